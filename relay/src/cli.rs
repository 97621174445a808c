//! The `map-relay` command line: `serve` and the admin commands (`user add`,
//! `user list`, `user revoke`, `grant`, `ungrant`, `plans`). The binary only
//! calls [`main`]; errors print as `error: ...` on stderr with exit code 1
//! (usage errors: clap's exit code 2).

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::auth::Access;
use crate::config::RelayConfig;
use crate::db::RelayDb;
use crate::error::Result;
use crate::server::Relay;

/// Self-hosted relay for map plans (automerge-repo protocol, version 1).
#[derive(Debug, Parser)]
#[command(name = "map-relay", version)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args)]
struct DataArg {
    /// The relay database (SQLite).
    #[arg(
        long,
        env = "MAP_RELAY_DATA",
        default_value = "relay.db",
        global = true
    )]
    data: PathBuf,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the relay.
    Serve(ServeArgs),
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Give a user access to a plan.
    Grant {
        /// Plan: document id or automerge: URL.
        plan: String,
        /// User name.
        user: String,
        /// Read-only access.
        #[arg(
            long,
            conflicts_with = "read_write",
            required_unless_present = "read_write"
        )]
        read_only: bool,
        /// Read-write access.
        #[arg(long)]
        read_write: bool,
        #[command(flatten)]
        data: DataArg,
    },
    /// Take a user's access to a plan away.
    Ungrant {
        /// Plan: document id or automerge: URL.
        plan: String,
        /// User name.
        user: String,
        #[command(flatten)]
        data: DataArg,
    },
    /// List the plans stored on the relay.
    Plans {
        #[command(flatten)]
        data: DataArg,
    },
    /// Manage web links (made with `map share --web`).
    #[command(subcommand)]
    Link(LinkCommand),
}

#[derive(Debug, Subcommand)]
enum LinkCommand {
    /// List web links, newest first.
    List {
        /// Only the links of this plan (document id or automerge: URL).
        #[arg(long)]
        plan: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        data: DataArg,
    },
    /// Withdraw a web link: it opens nothing more and the browser sessions
    /// opened with it end at once.
    Revoke {
        /// The link's id (first column of `map-relay link list`).
        id: i64,
        #[command(flatten)]
        data: DataArg,
    },
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create a user and print their token (shown only this once).
    Add {
        /// Unique user name.
        name: String,
        #[command(flatten)]
        data: DataArg,
    },
    /// List users.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        data: DataArg,
    },
    /// Revoke a user: their tokens stop working at once.
    Revoke {
        /// User name.
        name: String,
        #[command(flatten)]
        data: DataArg,
    },
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8787")]
    listen: SocketAddr,
    #[command(flatten)]
    data: DataArg,
    /// Largest WebSocket message accepted, in bytes.
    #[arg(long, default_value_t = 16 * 1024 * 1024)]
    max_message_size: usize,
    /// Most WebSocket connections at once.
    #[arg(long, default_value_t = 1024)]
    max_connections: usize,
    /// Most WebSocket connections at once from one IP address.
    #[arg(long, default_value_t = 64)]
    max_connections_per_ip: usize,
    /// Seconds between pings to a peer.
    #[arg(long, default_value_t = 15)]
    ping_interval: u64,
    /// Seconds without any frame (or pong) after which a peer is closed; also
    /// how long a send may wait on a peer that reads nothing.
    #[arg(long, default_value_t = 45)]
    idle_timeout: u64,
    /// Seconds a plan stays in memory once nobody uses it: after its last
    /// connection closed, or after its last message while connections keep
    /// it open (it is loaded again on the next one).
    #[arg(long, default_value_t = 30)]
    unload_after: u64,
    /// Plans kept in memory at most: beyond this many, the least recently
    /// used of those quiet for a second leave memory at once (loaded again
    /// on their next message); 0: no limit.
    #[arg(long, default_value_t = 1000)]
    max_loaded_plans: usize,
    /// Failed authentications per minute from one IP address before it is
    /// refused (429) for the cooldown; 0 disables the limit.
    #[arg(long, default_value_t = 20)]
    max_auth_failures: u32,
    /// Seconds an address that failed authentication too often is refused.
    #[arg(long, default_value_t = 60)]
    auth_cooldown: u64,
    /// WebSocket connection attempts per minute from one IP address; more get
    /// 429. 0 disables the limit.
    #[arg(long, default_value_t = 600)]
    max_connect_attempts: u32,
    /// Seconds a client has to send a complete HTTP request head.
    #[arg(long, default_value_t = 10)]
    header_read_timeout: u64,
    /// Serve TLS (wss://) with this PEM certificate chain (needs --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Log format on stderr (level from RUST_LOG, default info).
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// Parse the command line, run, and return the exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

/// automerge opens an info-level span per load with its whole change graph
/// as a `Debug` field: formatted for every incoming change, it took a fifth
/// of the relay's CPU under load. Its spans stay off unless `RUST_LOG`
/// names automerge itself.
const QUIET_AUTOMERGE: &str = "automerge=warn";

fn init_logging(format: LogFormat, default: &str) {
    let from_env = std::env::var(tracing_subscriber::EnvFilter::DEFAULT_ENV).ok();
    let mut filter = from_env
        .as_deref()
        .and_then(|v| tracing_subscriber::EnvFilter::try_new(v).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new(default));
    if !from_env.is_some_and(|v| v.contains("automerge"))
        && let Ok(quiet) = QUIET_AUTOMERGE.parse()
    {
        filter = filter.add_directive(quiet);
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Serve(args) => serve(args),
        command => {
            init_logging(LogFormat::Text, "warn");
            admin(command)
        }
    }
}

fn serve(args: ServeArgs) -> Result<()> {
    crate::memory::tune_allocator();
    crate::memory::tune_sqlite();
    init_logging(args.log_format, "info");
    let mut config = RelayConfig::new(args.data.data);
    config.max_message_size = args.max_message_size;
    config.max_connections = args.max_connections;
    config.max_connections_per_ip = args.max_connections_per_ip;
    config.ping_interval = Duration::from_secs(args.ping_interval.max(1));
    config.idle_timeout = Duration::from_secs(args.idle_timeout.max(1));
    config.unload_after = Duration::from_secs(args.unload_after);
    config.max_loaded_plans = args.max_loaded_plans;
    config.max_auth_failures = args.max_auth_failures;
    config.auth_cooldown = Duration::from_secs(args.auth_cooldown);
    config.max_connect_attempts = args.max_connect_attempts;
    config.header_read_timeout = Duration::from_secs(args.header_read_timeout.max(1));
    if let (Some(cert), Some(key)) = (args.tls_cert, args.tls_key) {
        config.tls = Some(crate::config::TlsFiles { cert, key });
    }
    let runtime = tokio::runtime::Runtime::new()?;
    let serve = async move {
        let relay = Relay::open(config)?;
        let bound = relay.bind(args.listen).await.map_err(|e| match e {
            crate::RelayError::Io(source) => crate::RelayError::Listen {
                addr: args.listen,
                source,
            },
            e => e,
        })?;
        {
            let mut stdout = std::io::stdout().lock();
            writeln!(stdout, "map-relay listening on {}", bound.url())?;
            stdout.flush()?;
        }
        bound.serve(crate::shutdown::signal()).await
    };
    // The relay (its accept loop) runs on a worker thread, not on this one:
    // a connection it accepts is then spawned onto that worker's own queue
    // instead of waking a worker from outside. 1,000 connections: 6,900 ->
    // 3,400 context switches, relay CPU 0.19-0.20 -> 0.12-0.13 s
    // (`map-load --scenario idle`, docs/performance.md).
    runtime.block_on(async move {
        tokio::spawn(serve)
            .await
            .map_err(|e| crate::RelayError::Internal(format!("the relay stopped: {e}")))?
    })
}

fn admin(command: Command) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match command {
        Command::Serve(_) => unreachable!("handled by run"),
        Command::User(UserCommand::Add { name, data }) => {
            let db = RelayDb::open(&data.data)?;
            let token = db.add_user(&name)?;
            writeln!(out, "{token}")?;
        }
        Command::User(UserCommand::List { json, data }) => {
            let db = RelayDb::open_existing(&data.data)?;
            let users = db.list_users()?;
            if json {
                let text = serde_json::to_string_pretty(&users)
                    .map_err(|e| crate::RelayError::Internal(e.to_string()))?;
                writeln!(out, "{text}")?;
            } else {
                for user in users {
                    let status = match user.revoked_at {
                        Some(_) => "revoked",
                        None => "active",
                    };
                    writeln!(
                        out,
                        "{}\t{}\t{} plan(s)\t{}",
                        user.name,
                        status,
                        user.plans,
                        format_ms(user.created_at)
                    )?;
                }
            }
        }
        Command::User(UserCommand::Revoke { name, data }) => {
            let db = RelayDb::open_existing(&data.data)?;
            db.revoke_user(&name)?;
            eprintln!("revoked {name}");
        }
        Command::Grant {
            plan,
            user,
            read_only,
            data,
            ..
        } => {
            let db = RelayDb::open_existing(&data.data)?;
            let access = if read_only {
                Access::ReadOnly
            } else {
                Access::ReadWrite
            };
            db.grant(&plan, &user, access)?;
            eprintln!("granted {access} on {plan} to {user}");
        }
        Command::Ungrant { plan, user, data } => {
            let db = RelayDb::open_existing(&data.data)?;
            db.ungrant(&plan, &user)?;
            eprintln!("removed {user}'s access to {plan}");
        }
        Command::Plans { data } => {
            let db = RelayDb::open_existing(&data.data)?;
            for plan in db.list_plans()? {
                writeln!(out, "{plan}")?;
            }
        }
        Command::Link(LinkCommand::List { plan, json, data }) => {
            let db = RelayDb::open_existing(&data.data)?;
            let plan = plan
                .map(|p| {
                    crate::plan_id::parse(&p).ok_or_else(|| crate::RelayError::InvalidPlanId(p))
                })
                .transpose()?;
            let links = db.list_web_links(plan.as_deref())?;
            if json {
                let text = serde_json::to_string_pretty(&links)
                    .map_err(|e| crate::RelayError::Internal(e.to_string()))?;
                writeln!(out, "{text}")?;
            } else {
                let now = chrono::Utc::now().timestamp_millis();
                for link in links {
                    let status = match link.revoked_at {
                        Some(_) => "revoked".to_owned(),
                        None if link.expires_at <= now => "expired".to_owned(),
                        None => format!("until {}", format_ms(link.expires_at)),
                    };
                    writeln!(
                        out,
                        "{}\t{}\t{}\tby {}\t{}\t{} session(s)",
                        link.id, link.plan, link.access, link.created_by, status, link.sessions
                    )?;
                }
            }
        }
        Command::Link(LinkCommand::Revoke { id, data }) => {
            let db = RelayDb::open_existing(&data.data)?;
            if !db.revoke_web_link(id)? {
                return Err(crate::RelayError::UnknownLink(id));
            }
            eprintln!("revoked web link {id}; browsers that used it lose access now");
        }
    }
    out.flush()?;
    Ok(())
}

fn format_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}
