//! The `telltale` binary: all behaviour lives in the library (`telltale::cli`).

fn main() {
    std::process::exit(telltale::cli::main());
}
