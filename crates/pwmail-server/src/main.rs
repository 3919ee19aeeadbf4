//! `pwmail`: serve the API, dispatch mail, manage users, tokens and the
//! outbox. Everything happens in `pwmail_server::cli`.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    pwmail_server::cli::main()
}
