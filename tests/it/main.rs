//! Integration tests: real servers on 127.0.0.1, real sockets, real SQLite files, a real
//! PostgreSQL server (a throwaway cluster on a Unix socket).

mod alerts;
mod architecture;
mod audience;
mod cli;
mod config_errors;
mod contracts;
mod daemon;
mod exposition;
mod faults;
mod fleet;
mod fuzz;
mod hostile;
mod import;
mod mail;
mod operations;
mod pg_server;
mod postgres;
mod probes;
mod receiver;
mod reload;
mod report;
mod response;
mod scheduler;
mod security;
mod sla_cases;
mod smtp_server;
mod statements;
mod store;
mod store_suite;
mod support;
