//! The `tollgate` binary. The data plane lands with the core data-plane issue; until then
//! this prints what exists and where the bench tools are.

fn main() {
    println!(
        "tollgate {}: the gateway data plane is not built yet.\n\
         The measuring bench is: `cargo run --release -p tollgate-loadtest --bin tollgate-mock -- --help`\n\
         and `cargo run --release -p tollgate-loadtest --bin tollgate-load -- --help`.",
        env!("CARGO_PKG_VERSION")
    );
}
