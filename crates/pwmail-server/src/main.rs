//! `pwmail`: serve the API, dispatch mail, manage users, tokens and the
//! outbox. Everything happens in `pwmail_server::cli`.

fn main() -> std::process::ExitCode {
    pwmail_server::cli::main()
}
