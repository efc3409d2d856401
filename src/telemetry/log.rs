//! Access records as JSON lines. Formatting and writing happen on the coordinator thread; a
//! worker only pushes the fixed-size [`AccessRecord`].

use crate::account::AccessRecord;
use crate::config::Snapshot;
use crate::http1::Method;
use crate::json;

/// Appends one JSON line for `r`. `snap` is the snapshot the request ran under, when the
/// coordinator still has it (names are omitted otherwise).
pub fn access_line(out: &mut Vec<u8>, r: &AccessRecord, snap: Option<&Snapshot>) {
    out.extend_from_slice(b"{\"ts\":\"");
    rfc3339_micros(out, r.start_unix_us);
    out.extend_from_slice(b"\",\"request_id\":\"");
    request_id(out, r.worker, r.serial);
    out.extend_from_slice(b"\",\"method\":\"");
    out.extend_from_slice(method(r.method).as_bytes());
    out.extend_from_slice(b"\",\"route\":\"");
    out.extend_from_slice(r.route.label().as_bytes());
    out.extend_from_slice(b"\",\"status\":");
    json::uint(out, u64::from(r.status));
    if let Some(s) = snap {
        if let Some(k) = r.key.and_then(|k| s.keys.get(k.0 as usize)) {
            out.extend_from_slice(b",\"key\":");
            json::string(out, k.id.as_bytes());
        }
        if let Some(m) = r.model.and_then(|m| s.models.get(m.0 as usize)) {
            out.extend_from_slice(b",\"model\":");
            json::string(out, m.name.as_bytes());
        }
        if let Some(d) = r.deployment.and_then(|d| s.deployments.get(d.0 as usize)) {
            out.extend_from_slice(b",\"provider\":");
            json::string(out, s.provider(d.provider).name.as_bytes());
            out.extend_from_slice(b",\"upstream_model\":");
            json::string(out, d.upstream_model.as_bytes());
        }
    }
    out.extend_from_slice(b",\"stream\":");
    out.extend_from_slice(if r.stream { b"true" } else { b"false" });
    out.extend_from_slice(b",\"bytes_in\":");
    json::uint(out, r.request_bytes);
    out.extend_from_slice(b",\"bytes_out\":");
    json::uint(out, r.response_bytes);
    out.extend_from_slice(b",\"duration_us\":");
    json::uint(out, r.duration_us);
    out.extend_from_slice(b",\"upstream_us\":");
    json::uint(out, r.upstream_us);
    if let Some(e) = r.error {
        out.extend_from_slice(b",\"error\":\"");
        out.extend_from_slice(e.label().as_bytes());
        out.push(b'"');
    }
    out.extend_from_slice(b"}\n");
}

/// The `x-request-id` a response carries: `<worker>-<serial>`.
pub fn request_id(out: &mut Vec<u8>, worker: u16, serial: u64) {
    json::uint(out, u64::from(worker));
    out.push(b'-');
    json::uint(out, serial);
}

fn method(m: Method) -> &'static str {
    match m {
        Method::Get => "GET",
        Method::Head => "HEAD",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Delete => "DELETE",
        Method::Options => "OPTIONS",
        Method::Patch => "PATCH",
        Method::Connect => "CONNECT",
        Method::Trace => "TRACE",
        Method::Other => "OTHER",
    }
}

/// `2026-11-21T10:00:00.000123Z` from microseconds since the Unix epoch (UTC).
pub fn rfc3339_micros(out: &mut Vec<u8>, us: u64) {
    let secs = us / 1_000_000;
    let (y, mo, d) = civil_from_days((secs / 86_400) as i64);
    let sod = secs % 86_400;
    let s = format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:06}Z",
        sod / 3600,
        sod / 60 % 60,
        sod % 60,
        us % 1_000_000
    );
    out.extend_from_slice(s.as_bytes());
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (Howard Hinnant's
/// algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps() {
        let mut out = Vec::new();
        super::rfc3339_micros(&mut out, 1_795_000_000_123_456);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "2026-11-18T11:06:40.123456Z"
        );
        let mut out = Vec::new();
        super::rfc3339_micros(&mut out, 951_782_400_000_000);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "2000-02-29T00:00:00.000000Z"
        );
    }
}
