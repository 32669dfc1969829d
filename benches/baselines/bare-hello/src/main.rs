//! The smallest `lambda_runtime` hello world, as its own executable: the cold-start bench's
//! `bare-hello` reference, built by the benches with `cargo build --release -p bare-hello` (the
//! release profile `bootstrap` ships with, nothing else linked in). The code is
//! `benches/cold_start/bare_hello.rs`, shared with `tests/runtime_loop.rs`.

#[path = "../../../cold_start/bare_hello.rs"]
mod bare_hello;

fn main() -> Result<(), lambda_runtime::Error> {
    bare_hello::main()
}
