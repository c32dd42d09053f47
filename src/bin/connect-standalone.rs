//! Drop-in for Kafka's `connect-standalone`: same arguments, ferry underneath.
fn main() -> std::process::ExitCode {
    ferry::cli::connect_standalone_main()
}
