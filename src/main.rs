//! The `huckleberry` binary: `serve` (default), `migrate`, `dev`; see `huckleberry --help`.
//! Everything lives in the library ([`huckleberry::cli`]), where the tests reach it.

fn main() -> std::process::ExitCode {
    huckleberry::cli::main()
}
