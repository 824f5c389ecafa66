//! The `huckleberry-lambda` binary (cargo feature `lambda`): the service on AWS Lambda. Build
//! it with `cargo lambda build --release --features lambda --bin huckleberry-lambda`; see the
//! README's "Serverless" section. Everything lives in [`huckleberry::lambda`].

fn main() -> std::process::ExitCode {
    huckleberry::lambda::main()
}
