//! The phase driver: one request after another on a connection, every phase of a request
//! called in order from here (ARCHITECTURE.md, "The request path").

use super::*;

/// The connection loop: one request after another until the client closes, an error makes
/// the connection unusable, or the worker drains.
pub(super) async fn serve(w: &Rc<Worker>, mut io: ClientStream) {
    let mut c = Conn {
        buf: Vec::with_capacity(HEAD_READ_BYTES),
        head: RequestHead::new(),
        body: 0..0,
        next: 0,
        out: Vec::new(),
        ex: Exchange::default(),
        hedge: Exchange::default(),
        meter: Meter::default(),
        reserved: Vec::new(),
        cands: Vec::new(),
        order: Vec::new(),
    };
    loop {
        match read_head(w, &mut io, &mut c).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                // A head that could not be read: answer (best effort) and close.
                let mut ctx = RequestCtx::new(w, &c);
                respond_error(&mut io, &mut c, &mut ctx, &e).await;
                finish(w, &ctx);
                return;
            }
        }
        // Until `read_body` says otherwise, the request is its head.
        c.body = c.head.head_len..c.head.head_len;
        c.next = c.head.head_len;
        let snap = w.snapshot();
        let mut ctx = RequestCtx::new(w, &c);
        ctx.generation = snap.generation;
        c.meter.reset();
        let result = handle(w, &snap, &mut io, &mut c, &mut ctx).await;
        if let Err(e) = result {
            ctx.error = Some(e.kind);
            if ctx.response_started {
                ctx.keep_alive = false;
            } else {
                ctx.keep_alive &= ctx.body_read;
                respond_error(&mut io, &mut c, &mut ctx, &e).await;
            }
        }
        settle(w, &snap, &mut c, &mut ctx);
        settle_quotas(w, &snap, &mut c, &mut ctx);
        finish(w, &ctx);
        if !ctx.keep_alive {
            return;
        }
        c.buf.drain(..c.next);
        c.next = 0;
        for b in [
            &mut c.buf,
            &mut c.out,
            &mut c.ex.ureq,
            &mut c.ex.ubuf,
            &mut c.hedge.ureq,
            &mut c.hedge.ubuf,
        ] {
            if b.capacity() > KEEP_BUFFER_BYTES {
                b.shrink_to(HEAD_READ_BYTES);
            }
        }
    }
}

/// The phases after the head, in order. Returns with the response written (or an error for
/// the loop to answer).
pub(super) async fn handle(
    w: &Worker,
    snap: &Snapshot,
    io: &mut ClientStream,
    c: &mut Conn,
    ctx: &mut RequestCtx,
) -> Result<(), GatewayError> {
    ctx.route = route(c.head.method, c.head.path(&c.buf))?;
    match ctx.route {
        Route::Health | Route::Ready => {
            read_body(snap, io, c, ctx).await?;
            let ready = !w.drain.is_set();
            let body: &[u8] = match (ctx.route, ready) {
                (Route::Health, _) => b"{\"status\":\"ok\"}",
                (_, true) => b"{\"status\":\"ready\"}",
                (_, false) => b"{\"status\":\"draining\"}",
            };
            let status = if ready || ctx.route == Route::Health {
                200
            } else {
                503
            };
            return respond_json(io, c, ctx, status, body).await;
        }
        _ => {}
    }
    let key = crate::policy::auth::authenticate(
        snap,
        &c.head,
        &c.buf,
        ctx.start_unix_us / 1_000_000,
        |k| w.disabled.borrow().is_disabled(snap.generation, k),
    )?;
    ctx.key = Some(key);
    ctx.log_hashes = snap.keys[key.0 as usize].log_content_sha256;
    read_body(snap, io, c, ctx).await?;
    if ctx.route == Route::Models {
        let k = &snap.keys[key.0 as usize];
        let body = k.models_json.as_deref().unwrap_or(&snap.models_json);
        return respond_json(io, c, ctx, 200, body).await;
    }
    let fields = parse_fields(w, snap, c, ctx)?;
    attempt::route_and_forward(w, snap, io, c, ctx, &fields).await
}
