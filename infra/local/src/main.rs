//! `sluice-local`: control, ingest and playback on one port, with the same routers the
//! Lambdas run. Local disk storage by default; S3 + DynamoDB when `SLUICE_STORE=aws`.

mod conn;
mod demo;
mod load;
mod remux;

use anyhow::Context;
use clap::Parser;
use sluice::config::{Config, StoreConfig};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Keeps freed fragment-sized buffers (hundreds of KB) in glibc's heap for the next
/// fragment instead of unmapping them and faulting fresh pages back in: before this, a
/// third of `remux`'s time went to page faults.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_freed_memory() {
    const LIMIT: libc::c_int = 64 << 20;
    // SAFETY: mallopt only changes allocator thresholds; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, LIMIT);
        libc::mallopt(libc::M_TRIM_THRESHOLD, LIMIT);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_memory() {}

/// Command-line flags.
#[derive(Parser, Debug)]
#[command(
    name = "sluice-local",
    version,
    about = "Sluice live packager and origin on one machine"
)]
struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Where the local store keeps segments and its database.
    #[arg(long, env = "SLUICE_DATA_DIR", default_value = "sluice-data")]
    data_dir: PathBuf,
    /// Public base URL used in API responses (defaults to http://<listen address>).
    #[arg(long)]
    base_url: Option<String>,
    /// Largest ingest request body, in bytes [default: 33554432, 6 s at 40 Mbit/s; the
    /// Lambdas default to 4194304, which their 6 MB request payload allows].
    #[arg(long, env = "SLUICE_MAX_SEGMENT_BYTES")]
    max_segment_bytes: Option<usize>,
    /// Create a demo channel and HLS endpoint and feed it a looping live stream.
    #[arg(long)]
    demo: bool,
    /// Folder of the demo's pre-encoded renditions.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/demo"))]
    demo_dir: PathBuf,
    /// Folder served under /assets (hls.js for the demo page).
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/assets"))]
    assets_dir: PathBuf,
    /// Require SigV4-signed control requests from these keys (`AKID:SECRET[,...]`);
    /// a wrong signature gets 403. Off by default. On the command line the secret shows in
    /// `ps`: prefer the environment variable or --control-credentials-file.
    #[arg(long, env = "SLUICE_CONTROL_CREDENTIALS", hide_env_values = true)]
    control_credentials: Option<String>,
    /// Read --control-credentials (`AKID:SECRET[,...]`, surrounding whitespace ignored)
    /// from this file instead.
    #[arg(
        long,
        env = "SLUICE_CONTROL_CREDENTIALS_FILE",
        conflicts_with = "control_credentials"
    )]
    control_credentials_file: Option<PathBuf>,
    /// Region that ARNs name [default: AWS_REGION, else us-east-1].
    #[arg(long, env = "SLUICE_REGION")]
    region: Option<String>,
    /// Account id that ARNs name [default: 000000000000].
    #[arg(long, env = "SLUICE_ACCOUNT_ID")]
    account_id: Option<String>,
    /// Channel quota; beyond it CreateChannel is 429 [default: 30, MediaPackage's].
    #[arg(long, env = "SLUICE_MAX_CHANNELS")]
    max_channels: Option<usize>,
    /// Origin endpoints per channel [default: 10, MediaPackage's].
    #[arg(long, env = "SLUICE_MAX_ENDPOINTS_PER_CHANNEL")]
    max_endpoints_per_channel: Option<usize>,
    /// Target durations without input after which a live media playlist is 404, not stale
    /// [default: 4].
    #[arg(long, env = "SLUICE_STALE_AFTER_TARGET_DURATIONS")]
    stale_after_target_durations: Option<u32>,
    /// Seconds a CDN identifier secret is cached (0: read it on every request) [default: 60].
    #[arg(long, env = "SLUICE_SECRET_CACHE_SECONDS")]
    secret_cache_seconds: Option<u64>,
    /// Tests: inject storage faults as this JSON file says, re-read while running (see
    /// `store::faulty`; a missing file means no faults).
    #[arg(long, env = "SLUICE_FAULTS")]
    faults: Option<PathBuf>,
    /// Seconds a client has to send a whole request head: from connecting for the first
    /// request, from its first byte for later ones (0: no limit).
    #[arg(long, env = "SLUICE_HEADER_TIMEOUT_SECS", default_value_t = 10)]
    header_timeout_secs: u64,
    /// Seconds a keep-alive connection may sit idle between requests; longer than the
    /// segment duration, so encoders keep their connection between uploads (0: no limit).
    #[arg(long, env = "SLUICE_IDLE_TIMEOUT_SECS", default_value_t = 60)]
    idle_timeout_secs: u64,
    /// A request body must deliver --body-min-bytes (or end) within each window of this
    /// many seconds once the server reads it, or it is answered 408 (0: no limit).
    #[arg(long, env = "SLUICE_BODY_TIMEOUT_SECS", default_value_t = 10)]
    body_timeout_secs: u64,
    /// Bytes a request body must deliver per --body-timeout-secs window.
    #[arg(long, env = "SLUICE_BODY_MIN_BYTES", default_value_t = 1024)]
    body_min_bytes: u64,
    /// Open connections at most; more wait in the listen backlog until one closes.
    #[arg(long, env = "SLUICE_MAX_CONNECTIONS", default_value_t = 512)]
    max_connections: usize,
    /// Secret the reference key server (`/speke/v1`, `/speke/v2`, `/keys/`,
    /// `/clearkey/license`) derives its keys from [default: a public value: its keys protect
    /// nothing].
    #[arg(long, env = "SLUICE_KEY_SERVER_SECRET", hide_env_values = true)]
    key_server_secret: Option<String>,
    /// Milliseconds a request to a key provider may take before the last key is used
    /// instead [default: 2000].
    #[arg(long, env = "SLUICE_KEY_PROVIDER_TIMEOUT_MS")]
    key_provider_timeout_ms: Option<u64>,
    /// With SLUICE_STORE=aws: create the bucket and tables if missing (for emulators).
    #[arg(long)]
    create_aws_resources: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

/// Offline tools that share the packager's code (no server is started).
#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Repackage an MPEG-TS file as CMAF: one init segment and numbered fragments per track.
    Remux {
        /// The TS input (`-` for standard input).
        input: PathBuf,
        /// Folder for `{video,audio_N}_init.mp4` and `{...}_{n}.m4s`; created if missing.
        output_dir: PathBuf,
        /// Cut fragments at the first keyframe after this many seconds.
        #[arg(long, default_value_t = 2.0)]
        fragment_seconds: f64,
    },
    /// Load test on this server: the demo feeder pushes N channels x R renditions in real
    /// time while viewer tasks fetch playlists and segments; prints throughput and latency
    /// percentiles, exits 1 on any error. Without --data-dir it uses a fresh temp folder.
    Load {
        #[arg(long, default_value_t = 10)]
        channels: usize,
        #[arg(long, default_value_t = 4)]
        renditions: usize,
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// Viewer tasks requesting back to back.
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
    },
}

/// Raises the soft open-file limit to the hard one (often 1,024 of 4,096 or more), so that
/// --max-connections, not the descriptor table, bounds connections. Answers the limit.
#[cfg(unix)]
fn raise_open_file_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain system calls on a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return None;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            // Fails on macOS when the hard limit is unlimited; the soft limit then stays.
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    #[allow(clippy::unnecessary_cast)] // rlim_t is u64 on Linux, not on every Unix
    Some(limit.rlim_cur as u64)
}

#[cfg(not(unix))]
fn raise_open_file_limit() -> Option<u64> {
    None
}

fn main() -> anyhow::Result<()> {
    keep_freed_memory();
    let open_files = raise_open_file_limit();
    let args = Args::parse();
    if let Some(Command::Remux {
        input,
        output_dir,
        fragment_seconds,
    }) = &args.command
    {
        return remux::run(input, output_dir, *fragment_seconds);
    }
    let mut args = args;
    if matches!(args.command, Some(Command::Load { .. })) {
        if args.data_dir == Path::new("sluice-data") {
            args.data_dir = std::env::temp_dir().join(format!("sluice-load-{}", std::process::id()));
        }
        // Only problems, not one line per request (still single-threaded here).
        if std::env::var_os("RUST_LOG").is_none() {
            std::env::set_var("RUST_LOG", "warn");
        }
    }
    tokio::runtime::Runtime::new()?.block_on(run_server(args, open_files))
}

async fn run_server(args: Args, open_files: Option<u64>) -> anyhow::Result<()> {
    init_logging();
    // Room for storage files, outgoing connections and the demo feeder besides clients.
    const SPARE_FILES: u64 = 256;
    if let Some(limit) = open_files.filter(|&l| (args.max_connections as u64).saturating_add(SPARE_FILES) > l) {
        tracing::warn!(
            "--max-connections {} leaves fewer than {SPARE_FILES} of the {limit} open files this process may have \
             for everything else; lower it or raise `ulimit -n`",
            args.max_connections
        );
    }
    let seconds = |s: u64| (s > 0).then(|| std::time::Duration::from_secs(s));
    let limits = conn::Limits {
        header_timeout: seconds(args.header_timeout_secs),
        idle_timeout: seconds(args.idle_timeout_secs),
        body_timeout: seconds(args.body_timeout_secs),
        body_min_bytes: args.body_min_bytes,
        max_connections: args.max_connections,
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let base_url = args.base_url.clone().unwrap_or_else(|| format!("http://{addr}"));

    let control_credentials = match &args.control_credentials_file {
        Some(file) => {
            let credentials = std::fs::read_to_string(file)
                .with_context(|| format!("reading --control-credentials-file {}", file.display()))?
                .trim()
                .to_owned();
            if credentials.is_empty() {
                anyhow::bail!("--control-credentials-file is empty; write ACCESS_KEY_ID:SECRET[,...] into it");
            }
            Some(credentials)
        }
        None => args.control_credentials.clone(),
    };
    // Flags (each also read from its SLUICE_* variable by clap) over the environment, through
    // the same builder the Lambdas use.
    let flags: Vec<(&str, Option<String>)> = vec![
        ("SLUICE_BASE_URL", Some(base_url.clone())),
        ("SLUICE_DATA_DIR", Some(args.data_dir.display().to_string())),
        (
            "SLUICE_MAX_SEGMENT_BYTES",
            Some(
                args.max_segment_bytes
                    .unwrap_or(sluice::config::LOCAL_MAX_SEGMENT_BYTES)
                    .to_string(),
            ),
        ),
        ("SLUICE_REGION", args.region.clone()),
        ("SLUICE_ACCOUNT_ID", args.account_id.clone()),
        ("SLUICE_MAX_CHANNELS", args.max_channels.map(|v| v.to_string())),
        (
            "SLUICE_MAX_ENDPOINTS_PER_CHANNEL",
            args.max_endpoints_per_channel.map(|v| v.to_string()),
        ),
        (
            "SLUICE_STALE_AFTER_TARGET_DURATIONS",
            args.stale_after_target_durations.map(|v| v.to_string()),
        ),
        (
            "SLUICE_SECRET_CACHE_SECONDS",
            args.secret_cache_seconds.map(|v| v.to_string()),
        ),
        ("SLUICE_CONTROL_CREDENTIALS", control_credentials.clone()),
        (
            "SLUICE_KEY_PROVIDER_TIMEOUT_MS",
            args.key_provider_timeout_ms.map(|v| v.to_string()),
        ),
    ];
    let config = Config::from_settings(|name| match flags.iter().find(|(flag, _)| *flag == name) {
        Some((_, value)) => value.clone(),
        None => std::env::var(name).ok(),
    })?;
    if let (StoreConfig::Aws(aws), true) = (&config.store, args.create_aws_resources) {
        sluice::store::aws::AwsStore::from_env(aws.clone())
            .await
            .create_resources()
            .await
            .context("creating the bucket and tables")?;
    }
    let store_kind = match &config.store {
        StoreConfig::Local { data_dir } => format!("local ({})", data_dir.display()),
        StoreConfig::Aws(aws) => format!(
            "aws (bucket {}, tables {} and {})",
            aws.bucket, aws.catalog_table, aws.segments_table
        ),
        StoreConfig::Memory => "memory".into(),
    };
    let mut app = sluice::App::from_config(config).await.context("opening storage")?;
    if let Some(settings) = &args.faults {
        // Tests only: storage calls fail as the settings file says (store::faulty).
        app.stores = sluice::store::faulty::wrap(app.stores, settings.clone());
        eprintln!("storage faults injected as {} says", settings.display());
    }
    let secret = args
        .key_server_secret
        .as_deref()
        .unwrap_or(sluice_keyserver::DEFAULT_SECRET);
    let router = sluice::http::all_routes(&app)
        .merge(demo::page_routes(args.assets_dir.clone()))
        .merge(sluice_keyserver::routes(secret, Some(&base_url)));

    println!("sluice-local listening on http://{addr} (storage: {store_kind})");
    let server = tokio::spawn(conn::serve(listener, router, limits));
    if args.demo && control_credentials.is_some() {
        anyhow::bail!(
            "--demo creates its channel through the control API unsigned; run it without --control-credentials"
        );
    }
    if let Some(Command::Load {
        channels,
        renditions,
        seconds,
        concurrency,
    }) = args.command
    {
        let plan = load::Plan {
            channels,
            renditions,
            seconds,
            concurrency,
        };
        return load::run(&base_url, &args.demo_dir, &plan).await;
    }
    if args.demo {
        // The feeder talks to this server over HTTP, so it starts after the server does.
        let url = demo::start(&base_url, &args.demo_dir)
            .await
            .context("starting the demo")?;
        println!("demo playback URL: {url}");
        println!("open http://{addr}/ to watch it in hls.js");
    }
    tokio::select! {
        result = server => result?,
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("SLUICE_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().init();
    } else {
        // Text logs: every field value (and the message) with its control characters
        // escaped, so a client-sent `%0A` or `%1B` in a request path can neither forge a
        // log line nor send terminal escapes (JSON logs are escaped by serde already).
        use tracing_subscriber::field::MakeExt;
        let fields = tracing_subscriber::fmt::format::debug_fn(|writer, field, value| {
            let value = format!("{value:?}");
            let value = sluice::http::escape_controls(&value);
            if field.name() == "message" {
                write!(writer, "{value}")
            } else {
                write!(writer, "{}={value}", field.name())
            }
        })
        .delimited(" ");
        // Colours only on a terminal: a log file gets no escape codes at all.
        let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
        builder.with_ansi(ansi).fmt_fields(fields).init();
    }
}
