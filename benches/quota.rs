//! The admission path's budget and rate-limit bookkeeping: a worker reserving and settling
//! against its allowances (three quotas, as a key with a budget, an RPM and a TPM limit has),
//! the coordinator answering one ask, and an ask/grant round trip over real rtrb rings between
//! two threads.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "bench code")]

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use tollgate::calendar::Period;
use tollgate::config::{Quota, QuotaId, Unit, Window};
use tollgate::policy::books::Books;
use tollgate::policy::quota::{LeaseMsg, QuotaControl, Quotas, Reserve};

fn quotas() -> Vec<Quota> {
    let q = |name: &str, unit, window, cap| Quota {
        name: name.into(),
        scope: "key:bench".into(),
        unit,
        window,
        cap,
        warn: None,
    };
    vec![
        q(
            "key:bench/usd",
            Unit::MicroUsd,
            Window::Period(Period::Daily),
            u64::MAX / 4,
        ),
        q(
            "key:bench/rpm",
            Unit::Requests,
            Window::Minute,
            u64::MAX / 4,
        ),
        q("key:bench/tpm", Unit::Tokens, Window::Minute, u64::MAX / 4),
    ]
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("quota");
    let now = Instant::now();
    let need = [(QuotaId(0), 700), (QuotaId(1), 1), (QuotaId(2), 1100)];

    // Worker side: reserve three quotas and settle them (the steady state: allowance on hand).
    let mut q = Quotas::new(0, 0, 3);
    for i in 0..3 {
        q.apply(
            QuotaId(i),
            QuotaControl::Grant {
                amount: i64::MAX / 4,
                free: 0,
                refused_ms: None,
            },
            now,
        );
    }
    g.bench_function("reserve_settle_3_quotas", |b| {
        b.iter(|| {
            assert_eq!(q.reserve(black_box(&need), now), Reserve::Granted);
            q.settle(QuotaId(0), 700, 650);
            q.settle(QuotaId(1), 1, 1);
            q.settle(QuotaId(2), 1100, 1000);
        });
        q.drain(|m| {
            black_box(m);
        });
    });

    // Coordinator side: one ask answered from the book.
    let mut snap = tollgate::config::validate::compile(&Default::default(), &|_| None).unwrap();
    snap.quotas = quotas();
    let mut books = Books::new(2, &snap, 20_000, now, &|_, _| 0);
    g.bench_function("coordinator_answers_an_ask", |b| {
        b.iter(|| {
            books.lease(
                black_box(LeaseMsg {
                    worker: 0,
                    generation: 0,
                    quota: QuotaId(0),
                    used: 700,
                    returned: 0,
                    want: 700,
                    reserved: 0,
                    reclaimed: false,
                }),
                now,
            );
            books.out.clear();
        });
    });

    // An ask and its grant over two SPSC rings, the coordinator side on another thread
    // (spinning, so this measures the rings and the cache-line handoffs, not a wakeup).
    let (mut ask_tx, mut ask_rx) = rtrb::RingBuffer::<LeaseMsg>::new(64);
    let (mut grant_tx, mut grant_rx) = rtrb::RingBuffer::<QuotaControl>::new(64);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    let echo = std::thread::spawn(move || {
        while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
            if let Ok(m) = ask_rx.pop() {
                let _ = grant_tx.push(QuotaControl::Grant {
                    amount: m.want,
                    free: 0,
                    refused_ms: None,
                });
            } else {
                std::hint::spin_loop();
            }
        }
    });
    let ask = LeaseMsg {
        worker: 0,
        generation: 0,
        quota: QuotaId(0),
        used: 0,
        returned: 0,
        want: 1,
        reserved: 0,
        reclaimed: false,
    };
    g.bench_function("ring_round_trip", |b| {
        b.iter(|| {
            ask_tx.push(ask).unwrap();
            loop {
                if let Ok(g) = grant_rx.pop() {
                    break black_box(g);
                }
                std::hint::spin_loop();
            }
        });
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    echo.join().unwrap();
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
