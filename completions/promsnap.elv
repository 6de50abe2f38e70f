
use builtin;
use str;

set edit:completion:arg-completer[promsnap] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'promsnap'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'promsnap'= {
            cand --config 'TOML configuration file. Flags and PROMSNAP_* variables override it'
            cand -q 'Print nothing but errors (for cron and timers); the exit code tells the result'
            cand --quiet 'Print nothing but errors (for cron and timers); the exit code tells the result'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand init 'Create a repository: a local directory or an S3 bucket prefix'
            cand backup 'Snapshot a running Prometheus and store its blocks in the repository'
            cand list 'List the snapshots in a repository, grouped by instance, oldest first'
            cand restore 'Restore a snapshot into a Prometheus data directory'
            cand prune 'Apply a retention policy: forget old snapshots, delete unused blocks'
            cand verify 'Check that backups are whole and would restore (for CI and incidents)'
            cand check-dir 'Check the TSDB structure of the blocks in a local directory'
            cand unlock 'Remove stale repository locks (left by crashed runs)'
            cand serve 'Run as a service: back up on a schedule, serve metrics and health'
            cand completions 'Print a shell completion script (commands and options)'
            cand man 'Print a man page in roff (for packagers: `man/` holds its output)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'promsnap;init'= {
            cand --repo 'Where backups live: s3://BUCKET[/PREFIX], file:///PATH or a directory path'
            cand --s3-endpoint 'S3 endpoint URL, for S3-compatible stores (MinIO, Garage, Ceph, R2, ...)'
            cand --s3-region 'S3 region [default: $AWS_REGION or the AWS profile''s, else us-east-1]'
            cand --s3-path-style 'Address buckets as ENDPOINT/BUCKET rather than BUCKET.ENDPOINT; most self-hosted stores (MinIO, Garage, Ceph) need this'
            cand --s3-checksums 'When to add CRC checksums to S3 requests. `when-required` works with every S3-compatible store; `when-supported` suits AWS S3'
            cand --retries 'Retry a failed S3 or Prometheus request up to N times (connection errors, timeouts, 5xx, throttling), with exponential backoff and jitter [default: 5]'
            cand --timeout 'Abandon (and retry) a request that gets no answer within DURATION, e.g. 30s [default: 2m; snapshots at least 10m]'
            cand --max-bandwidth 'Limit uploads and downloads together to RATE, e.g. 50MiB/s or 12.5MB/s, so a backup does not starve the host''s network'
            cand --config 'TOML configuration file. Flags and PROMSNAP_* variables override it'
            cand --json 'Print the result as one JSON object on stdout (the error, if it fails)'
            cand -q 'Print nothing but errors (for cron and timers); the exit code tells the result'
            cand --quiet 'Print nothing but errors (for cron and timers); the exit code tells the result'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'promsnap;backup'= {
            cand --wait-ready 'While Prometheus answers /-/ready with 503 (starting up, replaying its WAL), wait up to DURATION for it; 0 fails at once [default: 5m]'
            cand --data-dir 'Prometheus''s data directory (its --storage.tsdb.path), on this machine. [default: asked from Prometheus''s /api/v1/status/flags]'
            cand --from-dir 'Back up this directory instead of asking Prometheus for a snapshot: an existing snapshot, or the data directory of a stopped Prometheus. Only blocks are stored; wal/ and chunks_head/ are skipped'
            cand --instance 'Name this Prometheus in the repository [default: the host name]'
            cand --concurrency 'Blocks packed and uploaded at the same time, largest first [default: 2]'
            cand --zstd-level 'zstd compression level, 1 (fastest) to 19 [default: 1]. promsnap tunes zstd for TSDB chunks, so level 1 already stores about as little as restic; higher levels trade CPU time for a few percent'
            cand --zstd-threads 'zstd worker threads per block [default: number of CPUs]; 1 compresses on the thread that reads the block. With `--concurrency 1 --zstd-threads 1` a backup uses one core, to spare a busy host'
            cand --prometheus-config 'Prometheus''s configuration file, stored with the snapshot together with every rule file its rule_files reference [default: the config.file Prometheus reports, when it is readable here; if not, a warning]. Given explicitly, a file that cannot be read is an error'
            cand --include 'Also store this file with the snapshot, e.g. file_sd target files or alertmanager.yml (repeatable). A file that cannot be read is an error'
            cand --ha-group 'Prometheus high availability: replicas of one group that all run this backup store one snapshot per --min-interval between them. NAME names the group; `auto` derives it from the external labels minus the replica label(s). A replica that finds a recent snapshot of its group (or another replica storing one) skips, exits 0 and says why'
            cand --replica-label 'External label(s) that tell HA replicas apart, for `--ha-group auto` [default: replica and prometheus_replica]'
            cand --min-interval 'With --ha-group: skip when the group has a snapshot younger than this [default: 12h]'
            cand --time 'Record this as the snapshot''s time (RFC 3339) instead of now, e.g. when importing an old data directory with --from-dir'
            cand --lock-wait 'How long to wait for a prune that holds the repository [default: 10m]'
            cand --init 'Create the repository if --repo holds none yet (as `promsnap init` does). Without it, a backup into a location that is not a repository fails, so a typo or an unmounted share is noticed'
            cand --repository-format 'The repository format to store new blocks in: 2 (the default; data that compaction only moved is stored once) or 1 (one archive per block, readable by promsnap 0.1). For tests and migrations'
            cand --prometheus-url 'Prometheus base URL [default: http://localhost:9090]. Repeat it (or separate with commas) for replicas that share one data directory: the first that is ready (/-/ready) is used'
            cand --prometheus-username 'User name for basic authentication (Prometheus behind a web config)'
            cand --prometheus-password-file 'File holding the basic-authentication password'
            cand --prometheus-bearer-token-file 'File holding a bearer token'
            cand --prometheus-ca-cert 'PEM file with the CA that signed Prometheus''s TLS certificate'
            cand --repo 'Where backups live: s3://BUCKET[/PREFIX], file:///PATH or a directory path'
            cand --s3-endpoint 'S3 endpoint URL, for S3-compatible stores (MinIO, Garage, Ceph, R2, ...)'
            cand --s3-region 'S3 region [default: $AWS_REGION or the AWS profile''s, else us-east-1]'
            cand --s3-path-style 'Address buckets as ENDPOINT/BUCKET rather than BUCKET.ENDPOINT; most self-hosted stores (MinIO, Garage, Ceph) need this'
            cand --s3-checksums 'When to add CRC checksums to S3 requests. `when-required` works with every S3-compatible store; `when-supported` suits AWS S3'
            cand --retries 'Retry a failed S3 or Prometheus request up to N times (connection errors, timeouts, 5xx, throttling), with exponential backoff and jitter [default: 5]'
            cand --timeout 'Abandon (and retry) a request that gets no answer within DURATION, e.g. 30s [default: 2m; snapshots at least 10m]'
            cand --max-bandwidth 'Limit uploads and downloads together to RATE, e.g. 50MiB/s or 12.5MB/s, so a backup does not starve the host''s network'
            cand --metrics-file 'Write this run''s metrics (success or failure) to FILE in node_exporter''s textfile-collector format (atomically; other commands'' metrics in FILE are kept)'
            cand --pushgateway 'Push the same metrics to a Prometheus Pushgateway, e.g. http://pushgateway:9091 (job promsnap, grouped by instance and command)'
            cand --lock-file 'Lock file that keeps two runs from overlapping; a second run exits 4 at once [default: DATA_DIR/.promsnap.lock for backup, else one file per repository (and Prometheus) in $XDG_RUNTIME_DIR or the temp dir]'
            cand --config 'TOML configuration file. Flags and PROMSNAP_* variables override it'
            cand --skip-head 'Leave the in-memory head block out of the snapshot (faster; loses up to the last 2-3 hours of data)'
            cand --keep-local-snapshot 'Keep the local snapshot directory after the backup instead of removing it'
            cand --prune 'After a successful backup, prune with the policy in the configuration file''s [prune] section. A failed prune exits 3: the backup is stored, only the housekeeping failed'
            cand --json 'Print the result as one JSON object on stdout (the error, if it fails)'
            cand -q 'Print nothing but errors (for cron and timers); the exit code tells the result'
            cand --quiet 'Print nothing but errors (for cron and timers); the exit code tells the result'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'promsnap;list'= {
            cand --instance 'Only snapshots of this instance or HA group'
            cand --repo 'Where backups live: s3://BUCKET[/PREFIX], file:///PATH or a directory path'
            cand --s3-endpoint 'S3 endpoint URL, for S3-compatible stores (MinIO, Garage, Ceph, R2, ...)'
            cand --s3-region 'S3 region [default: $AWS_REGION or the AWS profile''s, else us-east-1]'
            cand --s3-path-style 'Address buckets as ENDPOINT/BUCKET rather than BUCKET.ENDPOINT; most self-hosted stores (MinIO, Garage, Ceph) need this'
            cand --s3-checksums 'When to add CRC checksums to S3 requests. `when-required` works with every S3-compatible store; `when-supported` suits AWS S3'
            cand --retries 'Retry a failed S3 or Prometheus request up to N times (connection errors, timeouts, 5xx, throttling), with exponential backoff and jitter [default: 5]'
            cand --timeout 'Abandon (and retry) a request that gets no answer within DURATION, e.g. 30s [default: 2m; snapshots at least 10m]'
            cand --max-bandwidth 'Limit uploads and downloads together to RATE, e.g. 50MiB/s or 12.5MB/s, so a backup does not starve the host''s network'
            cand --config 'TOML configuration file. Flags and PROMSNAP_* variables override it'
            cand --json 'Print the snapshots as one JSON object on stdout (the error, if it fails)'
            cand -q 'Print nothing but errors (for cron and timers); the exit code tells the result'
            cand --quiet 'Print nothing but errors (for cron and timers); the exit code tells the result'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'promsnap;restore'= {
            cand --data-dir 'The data directory to restore into. It must not be in use by a running Prometheus, and must be empty unless --force (or --merge)'
            cand --from 'Only restore the blocks with data at or after TIME: as promsnap prints it (2026-01-01 03:00, UTC), RFC 3339 (2026-01-01T03:00:00Z), a date, Unix seconds, `now`, or relative to now (-7d, -12h, -90m)'
            cand --to 'Only restore the blocks with data at or before TIME (same forms as --from)'
            cand --config-to 'Also write the snapshot''s configuration and rule files below DIR, each at its original absolute path (/etc/prometheus/prometheus.yml goes to DIR/etc/prometheus/prometheus.yml)'
            cand --instance 'Whose snapshot: an instance or HA group. `latest` needs it when the repository holds several; an id of another instance is refused'
            cand --concurrency 'Blocks downloaded and unpacked at the same time, largest first [default: one per CPU, 4 to 16]'
            cand --prometheus-url 'Prometheus base URL [default: http://localhost:9090]. Repeat it (or separate with commas) for replicas that share one data directory: the first that is ready (/-/ready) is used'
            cand --prometheus-username 'User name for basic authentication (Prometheus behind a web config)'
            cand --prometheus-password-file 'File holding the basic-authentication password'
            cand --prometheus-bearer-token-file 'File holding a bearer token'
            cand --prometheus-ca-cert 'PEM file with the CA that signed Prometheus''s TLS certificate'
            cand --repo 'Where backups live: s3://BUCKET[/PREFIX], file:///PATH or a directory path'
            cand --s3-endpoint 'S3 endpoint URL, for S3-compatible stores (MinIO, Garage, Ceph, R2, ...)'
            cand --s3-region 'S3 region [default: $AWS_REGION or the AWS profile''s, else us-east-1]'
            cand --s3-path-style 'Address buckets as ENDPOINT/BUCKET rather than BUCKET.ENDPOINT; most self-hosted stores (MinIO, Garage, Ceph) need this'
            cand --s3-checksums 'When to add CRC checksums to S3 requests. `when-required` works with every S3-compatible store; `when-supported` suits AWS S3'
            cand --retries 'Retry a failed S3 or Prometheus request up to N times (connection errors, timeouts, 5xx, throttling), with exponential backoff and jitter [default: 5]'
            cand --timeout 'Abandon (and retry) a request that gets no answer within DURATION, e.g. 30s [default: 2m; snapshots at least 10m]'
            cand --max-bandwidth 'Limit uploads and downloads together to RATE, e.g. 50MiB/s or 12.5MB/s, so a backup does not starve the host''s network'
            cand --metrics-file 'Write this run''s metrics (success or failure) to FILE in node_exporter''s textfile-collector format (atomically; other commands'' metrics in FILE are kept)'
            cand --pushgateway 'Push the same metrics to a Prometheus Pushgateway, e.g. http://pushgateway:9091 (job promsnap, grouped by instance and command)'
            cand --config 'TOML configuration file. Flags and PROMSNAP_* variables override it'
            cand --force 'Restore into a non-empty directory by first moving its content aside into DIR.before-restore-<time>; with --config-to, move existing files that differ aside too (nothing is deleted)'
            cand --merge 'Add the snapshot''s missing blocks to the data directory of a RUNNING Prometheus (2.39 or newer), which loads them at its next block reload, within about a minute. Blocks it already has are skipped; nothing in the directory is changed or deleted. With --prometheus-url promsnap reads the server''s retention and warns about blocks it would delete'
            cand --if-empty 'Do nothing (exit 0, and say so) when the data directory already holds blocks; restore otherwise. For an init container that gives a new or replaced replica the history of its peer: a restarted pod keeps its data, without even reaching the repository. With `latest`, a repository that holds no snapshot of the instance yet (a new group''s first start) is nothing to seed from: exit 0, with a warning that names the instances it holds'
            cand --no-data 'Restore only the configuration files (with --config-to), no blocks'
            cand --json 'Print the result as one JSON object on stdout (the error, if it fails)'
            cand -q 'Print nothing but errors (for cron and timers); the exit code tells the result'
            cand --quiet 'Print nothing but errors (for cron and timers); the exit code tells the result'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'promsnap;prune'= {
            cand --keep-last 'Keep the N newest snapshots'
            cand --keep-hourly 'Keep the newest snapshot of each of the last N hours that have one'
            cand --keep-daily 'Keep the newest snapshot of each of the last N days that have one'
            cand --keep-weekly 'Keep the newest snapshot of each of the last N ISO weeks that have one'
            cand --keep-monthly 'Keep the newest snapshot of each of the last N months that have one'
            cand --keep-yearly 'Keep the newest snapshot of each of the last N years that have one'
            cand --keep-within 'Keep every snapshot taken within DURATION of the newest one, e.g. 30d, 2w, 12h, 1y (Prometheus durations: y is 365 days, m is minutes; days step the calendar of --timezone, hours are elapsed time)'
            cand --timezone 'Time zone for hours, days, weeks, months and years, e.g. Europe/Berlin [default: UTC]'
            cand --grace 'Objects no snapshot references are deleted only when older than this, since a running backup may be about to use them [default: 24h]'
            cand --max-unused 'Repack a pack (format 2) when more than this share of it is data no remaining snapshot uses: its used blobs are copied into a new pack and the old one deleted. 0% repacks every pack with any unused byte (the most space back, the most copying); `unlimited` never repacks [default: 5%]'
            cand --instance 'Only apply the policy to this instance''s snapshots (by default every instance keeps its own N)'
            cand --lock-wait 'How long to wait for running backups to finish [default: 10m]'
            cand --repo 'Where backups live: s3://BUCKET[/PREFIX], file:///PATH or a directory path'
            cand --s3-endpoint 'S3 endpoint URL, for S3-compatible stores (MinIO, Garage, Ceph, R2, ...)'
            cand --s3-region 'S3 region [default: $AWS_REGION or the AWS profile''s, else us-east-1]'
            cand --s3-path-style 'Address buckets as ENDPOINT/BUCKET rather than BUCKET.ENDPOINT; most self-hosted stores (MinIO, Garage, Ceph) need this'
            cand --s3-checksums 'When to add CRC checksums to S3 requests. `when-required` works with every S3-compatible store; `when-supported` suits AWS S3'
            cand --retries 'Retry a failed S3 or Prometheus request up to N times (connection errors, timeouts, 5xx, throttling), with exponential backoff and jitter [default: 5]'
            cand --timeout 'Abandon (and retry) a request that gets no answer within DURATION, e.g. 30s [default: 2m; snapshots at least 10m]'
            cand --max-bandwidth 'Limit uploads and downloads together to RATE, e.g. 50MiB/s or 12.5MB/s, so a backup does not starve the host''s network'
            cand --metrics-file 'Write this run''s metrics (success or failure) to FILE in node_exporter''s textfile-collector format (atomically; other commands'' metrics in FILE are kept)'
            cand --pushgateway 'Push the same metrics to a Prometheus Pushgateway, e.g. http://pushgateway:9091 (job promsnap, grouped by instance and command)'
            cand --lock-file 'Lock file that keeps two runs from overlapping; a second run exits 4 at once [default: DATA_DIR/.promsnap.lock for backup, else one file per repository (and Prometheus) in $XDG_RUNTIME_DIR or the temp dir]'
            cand --config 'TOML configuration file. Flags and PROMSNAP_* variables override it'
            cand --dry-run 'Show what would be removed and why; change nothing'
            cand --forget-damaged 'Delete manifests that cannot be read (damaged, truncated, tampered with). Without it, a damaged manifest keeps every object, since it might reference any, and prune exits 3. `promsnap verify` names them; restore an older copy instead if you have one'
            cand --json 'Print the decisions and the result as one JSON object on stdout (the error, if it fails)'
            cand -q 'Print nothing but errors (for cron and timers); the exit code tells the result'
            cand --quiet 'Print nothing but errors (for cron and timers); the exit code tells the result'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'promsnap;verify'= {
            cand --read-data-subset 'Download only part of the objects: N% (random), or n/m (the n-th of m fixed groups, e.g. 1/7 .. 7/7 on seven nights covers everything)'
            cand --promtool 'promtool to use for --restore-test [default: promtool on PATH]'
            cand --instance 'Only snapshots of this instance (or HA group): with `latest` its newest, with no snapshot named all of its snapshots. An instance with no snapshot is an error that lists the instances there are'
            cand --concurrency 'Objects checked at the same time, largest first [default: 4; with --deep one per CPU, 4 to 16]'
            cand --scratch-dir 'Scratch space [default: the system temp dir]. --deep keeps a block''s small files there (index, meta.json, tombstones; chunks are checked in the stream); --restore-test restores whole snapshots into it'
            cand --repo 'Where backups live: s3://BUCKET[/PREFIX], file:///PATH or a directory path'
            cand --s3-endpoint 'S3 endpoint URL, for S3-compatible stores (MinIO, Garage, Ceph, R2, ...)'
            cand --s3-region 'S3 region [default: $AWS_REGION or the AWS profile''s, else us-east-1]'
            cand --s3-path-style 'Address buckets as ENDPOINT/BUCKET rather than BUCKET.ENDPOINT; most self-hosted stores (MinIO, Garage, Ceph) need this'
            cand --s3-checksums 'When to add CRC checksums to S3 requests. `when-required` works with every S3-compatible store; `when-supported` suits AWS S3'
            cand --retries 'Retry a failed S3 or Prometheus request up to N times (connection errors, timeouts, 5xx, throttling), with exponential backoff and jitter [default: 5]'
            cand --timeout 'Abandon (and retry) a request that gets no answer within DURATION, e.g. 30s [default: 2m; snapshots at least 10m]'
            cand --max-bandwidth 'Limit uploads and downloads together to RATE, e.g. 50MiB/s or 12.5MB/s, so a backup does not starve the host''s network'
            cand --metrics-file 'Write this run''s metrics (success or failure) to FILE in node_exporter''s textfile-collector format (atomically; other commands'' metrics in FILE are kept)'
            cand --pushgateway 'Push the same metrics to a Prometheus Pushgateway, e.g. http://pushgateway:9091 (job promsnap, grouped by instance and command)'
            cand --lock-file 'Lock file that keeps two runs from overlapping; a second run exits 4 at once [default: DATA_DIR/.promsnap.lock for backup, else one file per repository (and Prometheus) in $XDG_RUNTIME_DIR or the temp dir]'
            cand --config 'TOML configuration file. Flags and PROMSNAP_* variables override it'
            cand --all 'Verify every snapshot (the default when no snapshot is named)'
            cand --quick 'Only check that manifests parse and objects exist with the right size'
            cand --deep 'Also decompress every block as it downloads and check each file''s SHA-256 and the TSDB structure (index, every chunk record''s CRC, tombstones, meta.json)'
            cand --restore-test 'Also restore the snapshot(s) into a scratch directory and require `promtool tsdb list` to load every block. Without promtool (on PATH or --promtool) this is an error, unless --no-promtool'
            cand --no-promtool 'Run --restore-test without promtool: restore and check every hash, but do not ask Prometheus code to load the blocks'
            cand --json 'Print the report as one JSON object on stdout (the error, if it fails)'
            cand -q 'Print nothing but errors (for cron and timers); the exit code tells the result'
            cand --quiet 'Print nothing but errors (for cron and timers); the exit code tells the result'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'promsnap;check-dir'= {
            cand --config 'TOML configuration file. Flags and PROMSNAP_* variables override it'
            cand --json 'Print the report as one JSON object on stdout (the error, if it fails)'
            cand -q 'Print nothing but errors (for cron and timers); the exit code tells the result'
            cand --quiet 'Print nothing but errors (for cron and timers); the exit code tells the result'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'promsnap;unlock'= {
            cand --repo 'Where backups live: s3://BUCKET[/PREFIX], file:///PATH or a directory path'
            cand --s3-endpoint 'S3 endpoint URL, for S3-compatible stores (MinIO, Garage, Ceph, R2, ...)'
            cand --s3-region 'S3 region [default: $AWS_REGION or the AWS profile''s, else us-east-1]'
            cand --s3-path-style 'Address buckets as ENDPOINT/BUCKET rather than BUCKET.ENDPOINT; most self-hosted stores (MinIO, Garage, Ceph) need this'
            cand --s3-checksums 'When to add CRC checksums to S3 requests. `when-required` works with every S3-compatible store; `when-supported` suits AWS S3'
            cand --retries 'Retry a failed S3 or Prometheus request up to N times (connection errors, timeouts, 5xx, throttling), with exponential backoff and jitter [default: 5]'
            cand --timeout 'Abandon (and retry) a request that gets no answer within DURATION, e.g. 30s [default: 2m; snapshots at least 10m]'
            cand --max-bandwidth 'Limit uploads and downloads together to RATE, e.g. 50MiB/s or 12.5MB/s, so a backup does not starve the host''s network'
            cand --config 'TOML configuration file. Flags and PROMSNAP_* variables override it'
            cand --all 'Remove every lock, also live ones. Only when you are sure no promsnap is running against this repository'
            cand -q 'Print nothing but errors (for cron and timers); the exit code tells the result'
            cand --quiet 'Print nothing but errors (for cron and timers); the exit code tells the result'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'promsnap;serve'= {
            cand --schedule 'When to back up: a cron expression of five fields (minute hour day-of-month month day-of-week), or six with seconds first, in UTC unless prefixed with CRON_TZ=ZONE, e.g. ''CRON_TZ=Europe/Berlin 15 3 * * *'' [config: serve.schedule]'
            cand --random-delay 'Wait a random time up to DURATION after each scheduled time, so many servers on one schedule do not all hit the repository at once [default: 0s]'
            cand --listen-address 'Where the HTTP endpoints listen [default: 0.0.0.0:8431]'
            cand --verify 'After each successful backup, verify the new snapshot: quick (objects exist with their sizes), read (download every object and check its hash) or deep (also the TSDB structure)'
            cand --shutdown-grace 'On SIGTERM, how long a running backup may take to finish before it is aborted cleanly [default: 30s]'
            cand --log-format 'Log lines as text, or as one JSON object per line for log pipelines [default: text]'
            cand --trigger-token-file 'File holding the bearer token that POST /api/v1/backup requires. Without it the endpoint is off (404)'
            cand --wait-ready 'While Prometheus answers /-/ready with 503 (starting up, replaying its WAL), wait up to DURATION for it; 0 fails at once [default: 5m]'
            cand --data-dir 'Prometheus''s data directory (its --storage.tsdb.path), on this machine. [default: asked from Prometheus''s /api/v1/status/flags]'
            cand --instance 'Name this Prometheus in the repository [default: the host name]'
            cand --concurrency 'Blocks packed and uploaded at the same time, largest first [default: 2]'
            cand --zstd-level 'zstd compression level, 1 (fastest) to 19 [default: 1]. promsnap tunes zstd for TSDB chunks, so level 1 already stores about as little as restic; higher levels trade CPU time for a few percent'
            cand --zstd-threads 'zstd worker threads per block [default: number of CPUs]; 1 compresses on the thread that reads the block. With `--concurrency 1 --zstd-threads 1` a backup uses one core, to spare a busy host'
            cand --prometheus-config 'Prometheus''s configuration file, stored with the snapshot together with every rule file its rule_files reference [default: the config.file Prometheus reports, when it is readable here; if not, a warning]. Given explicitly, a file that cannot be read is an error'
            cand --include 'Also store this file with the snapshot, e.g. file_sd target files or alertmanager.yml (repeatable). A file that cannot be read is an error'
            cand --ha-group 'Prometheus high availability: replicas of one group that all run this backup store one snapshot per --min-interval between them. NAME names the group; `auto` derives it from the external labels minus the replica label(s). A replica that finds a recent snapshot of its group (or another replica storing one) skips, exits 0 and says why'
            cand --replica-label 'External label(s) that tell HA replicas apart, for `--ha-group auto` [default: replica and prometheus_replica]'
            cand --min-interval 'With --ha-group: skip when the group has a snapshot younger than this [default: 12h]'
            cand --lock-wait 'How long to wait for a prune that holds the repository [default: 10m]'
            cand --init 'Create the repository if --repo holds none yet (as `promsnap init` does). Without it, a backup into a location that is not a repository fails, so a typo or an unmounted share is noticed'
            cand --repository-format 'The repository format to store new blocks in: 2 (the default; data that compaction only moved is stored once) or 1 (one archive per block, readable by promsnap 0.1). For tests and migrations'
            cand --prometheus-url 'Prometheus base URL [default: http://localhost:9090]. Repeat it (or separate with commas) for replicas that share one data directory: the first that is ready (/-/ready) is used'
            cand --prometheus-username 'User name for basic authentication (Prometheus behind a web config)'
            cand --prometheus-password-file 'File holding the basic-authentication password'
            cand --prometheus-bearer-token-file 'File holding a bearer token'
            cand --prometheus-ca-cert 'PEM file with the CA that signed Prometheus''s TLS certificate'
            cand --repo 'Where backups live: s3://BUCKET[/PREFIX], file:///PATH or a directory path'
            cand --s3-endpoint 'S3 endpoint URL, for S3-compatible stores (MinIO, Garage, Ceph, R2, ...)'
            cand --s3-region 'S3 region [default: $AWS_REGION or the AWS profile''s, else us-east-1]'
            cand --s3-path-style 'Address buckets as ENDPOINT/BUCKET rather than BUCKET.ENDPOINT; most self-hosted stores (MinIO, Garage, Ceph) need this'
            cand --s3-checksums 'When to add CRC checksums to S3 requests. `when-required` works with every S3-compatible store; `when-supported` suits AWS S3'
            cand --retries 'Retry a failed S3 or Prometheus request up to N times (connection errors, timeouts, 5xx, throttling), with exponential backoff and jitter [default: 5]'
            cand --timeout 'Abandon (and retry) a request that gets no answer within DURATION, e.g. 30s [default: 2m; snapshots at least 10m]'
            cand --max-bandwidth 'Limit uploads and downloads together to RATE, e.g. 50MiB/s or 12.5MB/s, so a backup does not starve the host''s network'
            cand --metrics-file 'Write this run''s metrics (success or failure) to FILE in node_exporter''s textfile-collector format (atomically; other commands'' metrics in FILE are kept)'
            cand --pushgateway 'Push the same metrics to a Prometheus Pushgateway, e.g. http://pushgateway:9091 (job promsnap, grouped by instance and command)'
            cand --lock-file 'Lock file that keeps two runs from overlapping; a second run exits 4 at once [default: DATA_DIR/.promsnap.lock for backup, else one file per repository (and Prometheus) in $XDG_RUNTIME_DIR or the temp dir]'
            cand --time 'Record this as the snapshot''s time (RFC 3339) instead of now, e.g. when importing an old data directory with --from-dir'
            cand --from-dir 'Back up this directory instead of asking Prometheus for a snapshot: an existing snapshot, or the data directory of a stopped Prometheus. Only blocks are stored; wal/ and chunks_head/ are skipped'
            cand --config 'TOML configuration file. Flags and PROMSNAP_* variables override it'
            cand --skip-head 'Leave the in-memory head block out of the snapshot (faster; loses up to the last 2-3 hours of data)'
            cand --keep-local-snapshot 'Keep the local snapshot directory after the backup instead of removing it'
            cand --prune 'After a successful backup, prune with the policy in the configuration file''s [prune] section. A failed prune exits 3: the backup is stored, only the housekeeping failed'
            cand --json 'Print the result as one JSON object on stdout (the error, if it fails)'
            cand -q 'Print nothing but errors (for cron and timers); the exit code tells the result'
            cand --quiet 'Print nothing but errors (for cron and timers); the exit code tells the result'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'promsnap;completions'= {
            cand --config 'TOML configuration file. Flags and PROMSNAP_* variables override it'
            cand -q 'Print nothing but errors (for cron and timers); the exit code tells the result'
            cand --quiet 'Print nothing but errors (for cron and timers); the exit code tells the result'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'promsnap;man'= {
            cand --config 'TOML configuration file. Flags and PROMSNAP_* variables override it'
            cand -q 'Print nothing but errors (for cron and timers); the exit code tells the result'
            cand --quiet 'Print nothing but errors (for cron and timers); the exit code tells the result'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'promsnap;help'= {
            cand init 'Create a repository: a local directory or an S3 bucket prefix'
            cand backup 'Snapshot a running Prometheus and store its blocks in the repository'
            cand list 'List the snapshots in a repository, grouped by instance, oldest first'
            cand restore 'Restore a snapshot into a Prometheus data directory'
            cand prune 'Apply a retention policy: forget old snapshots, delete unused blocks'
            cand verify 'Check that backups are whole and would restore (for CI and incidents)'
            cand check-dir 'Check the TSDB structure of the blocks in a local directory'
            cand unlock 'Remove stale repository locks (left by crashed runs)'
            cand serve 'Run as a service: back up on a schedule, serve metrics and health'
            cand completions 'Print a shell completion script (commands and options)'
            cand man 'Print a man page in roff (for packagers: `man/` holds its output)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'promsnap;help;init'= {
        }
        &'promsnap;help;backup'= {
        }
        &'promsnap;help;list'= {
        }
        &'promsnap;help;restore'= {
        }
        &'promsnap;help;prune'= {
        }
        &'promsnap;help;verify'= {
        }
        &'promsnap;help;check-dir'= {
        }
        &'promsnap;help;unlock'= {
        }
        &'promsnap;help;serve'= {
        }
        &'promsnap;help;completions'= {
        }
        &'promsnap;help;man'= {
        }
        &'promsnap;help;help'= {
        }
    ]
    $completions[$command]
}
