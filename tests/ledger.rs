//! Spend persisted by the coordinator survives a restart — and a torn write at the end of the
//! log — exactly, per key and per team, compared with the mock provider's ledger.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

mod support;

use support::*;
use tollgate::account::ledger::Ledger;

#[test]
fn spend_survives_a_restart_and_a_torn_tail_exactly() {
    let mock = start_mock(|_| {});
    let dir = test_dir("ledger-restart");
    let extra = format!(
        "[ledger]\ndir = {:?}\ncompact_bytes = 256\n[[teams]]\nname = \"t\"\n\
         [[keys]]\nid = \"member\"\nsha256 = \"{}\"\nteam = \"t\"\n",
        dir.join("ledger").to_str().unwrap(),
        sha256_hex("sk-member")
    );
    let text = config_text(Some(mock.addr), 2, &extra);

    // First life: requests from two keys, streamed and not; small compaction threshold so
    // the snapshot path is taken too.
    let gw = start(&text);
    let mut c = Client::connect(gw.local_addr());
    for i in 0..60 {
        let secret = if i % 3 == 0 { "sk-member" } else { KEY };
        let auth = format!("Bearer {secret}");
        c.send(&post_with(
            "/v1/chat/completions",
            &[("authorization", &auth)],
            chat("up-chat", i % 2 == 0).as_bytes(),
        ));
        assert_eq!(c.response().status, 200);
    }
    drop(c);
    let first = gw.shutdown();
    let ledger = mock.ledger();
    let both = |p: &tollgate::account::coordinator::Published| {
        let (a, b) = (&p.spend["test"], &p.spend["member"]);
        (
            a.requests + b.requests,
            a.input_tokens + b.input_tokens,
            a.output_tokens + b.output_tokens,
        )
    };
    assert_eq!(
        both(&first),
        (
            60,
            ledger.total.prompt_tokens,
            ledger.total.completion_tokens
        )
    );

    // A torn write at the end of the current log, as a crash mid-append would leave.
    let logs: Vec<_> = std::fs::read_dir(dir.join("ledger"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    assert_eq!(logs.len(), 1, "one live log: {logs:?}");
    assert!(
        dir.join("ledger/spend.snapshot").exists(),
        "the log was compacted at least once"
    );
    let mut bytes = std::fs::read(&logs[0]).unwrap();
    bytes.extend_from_slice(b"0123456789abcdef {\"t\":1,\"s\":\"key:te");
    std::fs::write(&logs[0], bytes).unwrap();

    // Second life: the recovered figures, before any request, are the first life's.
    let gw = start(&text);
    let second = gw.shutdown();
    assert_eq!(both(&second), both(&first), "recovered exactly");
    assert_eq!(second.spend["member"], first.spend["member"]);
    let (l, rec) = Ledger::open(&dir.join("ledger")).unwrap();
    assert_eq!(
        rec.set_aside_bytes, 0,
        "the torn tail was set aside on the last start"
    );
    let aside = std::fs::read_dir(dir.join("ledger"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains("corrupt")
        })
        .count();
    assert_eq!(aside, 1, "and kept, not deleted");
    let totals = l.totals();
    assert_eq!(
        totals["team:t"], first.spend["member"],
        "the team's spend is its member's"
    );
}
