
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'promsnap' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'promsnap'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'promsnap' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'TOML configuration file. Flags and PROMSNAP_* variables override it')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing but errors (for cron and timers); the exit code tells the result')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing but errors (for cron and timers); the exit code tells the result')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('init', 'init', [CompletionResultType]::ParameterValue, 'Create a repository: a local directory or an S3 bucket prefix')
            [CompletionResult]::new('backup', 'backup', [CompletionResultType]::ParameterValue, 'Snapshot a running Prometheus and store its blocks in the repository')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List the snapshots in a repository, grouped by instance, oldest first')
            [CompletionResult]::new('restore', 'restore', [CompletionResultType]::ParameterValue, 'Restore a snapshot into a Prometheus data directory')
            [CompletionResult]::new('prune', 'prune', [CompletionResultType]::ParameterValue, 'Apply a retention policy: forget old snapshots, delete unused blocks')
            [CompletionResult]::new('verify', 'verify', [CompletionResultType]::ParameterValue, 'Check that backups are whole and would restore (for CI and incidents)')
            [CompletionResult]::new('check-dir', 'check-dir', [CompletionResultType]::ParameterValue, 'Check the TSDB structure of the blocks in a local directory')
            [CompletionResult]::new('unlock', 'unlock', [CompletionResultType]::ParameterValue, 'Remove stale repository locks (left by crashed runs)')
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Run as a service: back up on a schedule, serve metrics and health')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script (commands and options)')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Print a man page in roff (for packagers: `man/` holds its output)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'promsnap;init' {
            [CompletionResult]::new('--repo', '--repo', [CompletionResultType]::ParameterName, 'Where backups live: s3://BUCKET[/PREFIX], file:///PATH or a directory path')
            [CompletionResult]::new('--s3-endpoint', '--s3-endpoint', [CompletionResultType]::ParameterName, 'S3 endpoint URL, for S3-compatible stores (MinIO, Garage, Ceph, R2, ...)')
            [CompletionResult]::new('--s3-region', '--s3-region', [CompletionResultType]::ParameterName, 'S3 region [default: $AWS_REGION or the AWS profile''s, else us-east-1]')
            [CompletionResult]::new('--s3-path-style', '--s3-path-style', [CompletionResultType]::ParameterName, 'Address buckets as ENDPOINT/BUCKET rather than BUCKET.ENDPOINT; most self-hosted stores (MinIO, Garage, Ceph) need this')
            [CompletionResult]::new('--s3-checksums', '--s3-checksums', [CompletionResultType]::ParameterName, 'When to add CRC checksums to S3 requests. `when-required` works with every S3-compatible store; `when-supported` suits AWS S3')
            [CompletionResult]::new('--retries', '--retries', [CompletionResultType]::ParameterName, 'Retry a failed S3 or Prometheus request up to N times (connection errors, timeouts, 5xx, throttling), with exponential backoff and jitter [default: 5]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Abandon (and retry) a request that gets no answer within DURATION, e.g. 30s [default: 2m; snapshots at least 10m]')
            [CompletionResult]::new('--max-bandwidth', '--max-bandwidth', [CompletionResultType]::ParameterName, 'Limit uploads and downloads together to RATE, e.g. 50MiB/s or 12.5MB/s, so a backup does not starve the host''s network')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'TOML configuration file. Flags and PROMSNAP_* variables override it')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the result as one JSON object on stdout (the error, if it fails)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing but errors (for cron and timers); the exit code tells the result')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing but errors (for cron and timers); the exit code tells the result')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'promsnap;backup' {
            [CompletionResult]::new('--wait-ready', '--wait-ready', [CompletionResultType]::ParameterName, 'While Prometheus answers /-/ready with 503 (starting up, replaying its WAL), wait up to DURATION for it; 0 fails at once [default: 5m]')
            [CompletionResult]::new('--data-dir', '--data-dir', [CompletionResultType]::ParameterName, 'Prometheus''s data directory (its --storage.tsdb.path), on this machine. [default: asked from Prometheus''s /api/v1/status/flags]')
            [CompletionResult]::new('--from-dir', '--from-dir', [CompletionResultType]::ParameterName, 'Back up this directory instead of asking Prometheus for a snapshot: an existing snapshot, or the data directory of a stopped Prometheus. Only blocks are stored; wal/ and chunks_head/ are skipped')
            [CompletionResult]::new('--instance', '--instance', [CompletionResultType]::ParameterName, 'Name this Prometheus in the repository [default: the host name]')
            [CompletionResult]::new('--concurrency', '--concurrency', [CompletionResultType]::ParameterName, 'Blocks packed and uploaded at the same time, largest first [default: 2]')
            [CompletionResult]::new('--zstd-level', '--zstd-level', [CompletionResultType]::ParameterName, 'zstd compression level, 1 (fastest) to 19 [default: 1]. promsnap tunes zstd for TSDB chunks, so level 1 already stores about as little as restic; higher levels trade CPU time for a few percent')
            [CompletionResult]::new('--zstd-threads', '--zstd-threads', [CompletionResultType]::ParameterName, 'zstd worker threads per block [default: number of CPUs]; 1 compresses on the thread that reads the block. With `--concurrency 1 --zstd-threads 1` a backup uses one core, to spare a busy host')
            [CompletionResult]::new('--prometheus-config', '--prometheus-config', [CompletionResultType]::ParameterName, 'Prometheus''s configuration file, stored with the snapshot together with every rule file its rule_files reference [default: the config.file Prometheus reports, when it is readable here; if not, a warning]. Given explicitly, a file that cannot be read is an error')
            [CompletionResult]::new('--include', '--include', [CompletionResultType]::ParameterName, 'Also store this file with the snapshot, e.g. file_sd target files or alertmanager.yml (repeatable). A file that cannot be read is an error')
            [CompletionResult]::new('--ha-group', '--ha-group', [CompletionResultType]::ParameterName, 'Prometheus high availability: replicas of one group that all run this backup store one snapshot per --min-interval between them. NAME names the group; `auto` derives it from the external labels minus the replica label(s). A replica that finds a recent snapshot of its group (or another replica storing one) skips, exits 0 and says why')
            [CompletionResult]::new('--replica-label', '--replica-label', [CompletionResultType]::ParameterName, 'External label(s) that tell HA replicas apart, for `--ha-group auto` [default: replica and prometheus_replica]')
            [CompletionResult]::new('--min-interval', '--min-interval', [CompletionResultType]::ParameterName, 'With --ha-group: skip when the group has a snapshot younger than this [default: 12h]')
            [CompletionResult]::new('--time', '--time', [CompletionResultType]::ParameterName, 'Record this as the snapshot''s time (RFC 3339) instead of now, e.g. when importing an old data directory with --from-dir')
            [CompletionResult]::new('--lock-wait', '--lock-wait', [CompletionResultType]::ParameterName, 'How long to wait for a prune that holds the repository [default: 10m]')
            [CompletionResult]::new('--init', '--init', [CompletionResultType]::ParameterName, 'Create the repository if --repo holds none yet (as `promsnap init` does). Without it, a backup into a location that is not a repository fails, so a typo or an unmounted share is noticed')
            [CompletionResult]::new('--repository-format', '--repository-format', [CompletionResultType]::ParameterName, 'The repository format to store new blocks in: 2 (the default; data that compaction only moved is stored once) or 1 (one archive per block, readable by promsnap 0.1). For tests and migrations')
            [CompletionResult]::new('--prometheus-url', '--prometheus-url', [CompletionResultType]::ParameterName, 'Prometheus base URL [default: http://localhost:9090]. Repeat it (or separate with commas) for replicas that share one data directory: the first that is ready (/-/ready) is used')
            [CompletionResult]::new('--prometheus-username', '--prometheus-username', [CompletionResultType]::ParameterName, 'User name for basic authentication (Prometheus behind a web config)')
            [CompletionResult]::new('--prometheus-password-file', '--prometheus-password-file', [CompletionResultType]::ParameterName, 'File holding the basic-authentication password')
            [CompletionResult]::new('--prometheus-bearer-token-file', '--prometheus-bearer-token-file', [CompletionResultType]::ParameterName, 'File holding a bearer token')
            [CompletionResult]::new('--prometheus-ca-cert', '--prometheus-ca-cert', [CompletionResultType]::ParameterName, 'PEM file with the CA that signed Prometheus''s TLS certificate')
            [CompletionResult]::new('--repo', '--repo', [CompletionResultType]::ParameterName, 'Where backups live: s3://BUCKET[/PREFIX], file:///PATH or a directory path')
            [CompletionResult]::new('--s3-endpoint', '--s3-endpoint', [CompletionResultType]::ParameterName, 'S3 endpoint URL, for S3-compatible stores (MinIO, Garage, Ceph, R2, ...)')
            [CompletionResult]::new('--s3-region', '--s3-region', [CompletionResultType]::ParameterName, 'S3 region [default: $AWS_REGION or the AWS profile''s, else us-east-1]')
            [CompletionResult]::new('--s3-path-style', '--s3-path-style', [CompletionResultType]::ParameterName, 'Address buckets as ENDPOINT/BUCKET rather than BUCKET.ENDPOINT; most self-hosted stores (MinIO, Garage, Ceph) need this')
            [CompletionResult]::new('--s3-checksums', '--s3-checksums', [CompletionResultType]::ParameterName, 'When to add CRC checksums to S3 requests. `when-required` works with every S3-compatible store; `when-supported` suits AWS S3')
            [CompletionResult]::new('--retries', '--retries', [CompletionResultType]::ParameterName, 'Retry a failed S3 or Prometheus request up to N times (connection errors, timeouts, 5xx, throttling), with exponential backoff and jitter [default: 5]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Abandon (and retry) a request that gets no answer within DURATION, e.g. 30s [default: 2m; snapshots at least 10m]')
            [CompletionResult]::new('--max-bandwidth', '--max-bandwidth', [CompletionResultType]::ParameterName, 'Limit uploads and downloads together to RATE, e.g. 50MiB/s or 12.5MB/s, so a backup does not starve the host''s network')
            [CompletionResult]::new('--metrics-file', '--metrics-file', [CompletionResultType]::ParameterName, 'Write this run''s metrics (success or failure) to FILE in node_exporter''s textfile-collector format (atomically; other commands'' metrics in FILE are kept)')
            [CompletionResult]::new('--pushgateway', '--pushgateway', [CompletionResultType]::ParameterName, 'Push the same metrics to a Prometheus Pushgateway, e.g. http://pushgateway:9091 (job promsnap, grouped by instance and command)')
            [CompletionResult]::new('--lock-file', '--lock-file', [CompletionResultType]::ParameterName, 'Lock file that keeps two runs from overlapping; a second run exits 4 at once [default: DATA_DIR/.promsnap.lock for backup, else one file per repository (and Prometheus) in $XDG_RUNTIME_DIR or the temp dir]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'TOML configuration file. Flags and PROMSNAP_* variables override it')
            [CompletionResult]::new('--skip-head', '--skip-head', [CompletionResultType]::ParameterName, 'Leave the in-memory head block out of the snapshot (faster; loses up to the last 2-3 hours of data)')
            [CompletionResult]::new('--keep-local-snapshot', '--keep-local-snapshot', [CompletionResultType]::ParameterName, 'Keep the local snapshot directory after the backup instead of removing it')
            [CompletionResult]::new('--prune', '--prune', [CompletionResultType]::ParameterName, 'After a successful backup, prune with the policy in the configuration file''s [prune] section. A failed prune exits 3: the backup is stored, only the housekeeping failed')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the result as one JSON object on stdout (the error, if it fails)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing but errors (for cron and timers); the exit code tells the result')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing but errors (for cron and timers); the exit code tells the result')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'promsnap;list' {
            [CompletionResult]::new('--instance', '--instance', [CompletionResultType]::ParameterName, 'Only snapshots of this instance or HA group')
            [CompletionResult]::new('--repo', '--repo', [CompletionResultType]::ParameterName, 'Where backups live: s3://BUCKET[/PREFIX], file:///PATH or a directory path')
            [CompletionResult]::new('--s3-endpoint', '--s3-endpoint', [CompletionResultType]::ParameterName, 'S3 endpoint URL, for S3-compatible stores (MinIO, Garage, Ceph, R2, ...)')
            [CompletionResult]::new('--s3-region', '--s3-region', [CompletionResultType]::ParameterName, 'S3 region [default: $AWS_REGION or the AWS profile''s, else us-east-1]')
            [CompletionResult]::new('--s3-path-style', '--s3-path-style', [CompletionResultType]::ParameterName, 'Address buckets as ENDPOINT/BUCKET rather than BUCKET.ENDPOINT; most self-hosted stores (MinIO, Garage, Ceph) need this')
            [CompletionResult]::new('--s3-checksums', '--s3-checksums', [CompletionResultType]::ParameterName, 'When to add CRC checksums to S3 requests. `when-required` works with every S3-compatible store; `when-supported` suits AWS S3')
            [CompletionResult]::new('--retries', '--retries', [CompletionResultType]::ParameterName, 'Retry a failed S3 or Prometheus request up to N times (connection errors, timeouts, 5xx, throttling), with exponential backoff and jitter [default: 5]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Abandon (and retry) a request that gets no answer within DURATION, e.g. 30s [default: 2m; snapshots at least 10m]')
            [CompletionResult]::new('--max-bandwidth', '--max-bandwidth', [CompletionResultType]::ParameterName, 'Limit uploads and downloads together to RATE, e.g. 50MiB/s or 12.5MB/s, so a backup does not starve the host''s network')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'TOML configuration file. Flags and PROMSNAP_* variables override it')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the snapshots as one JSON object on stdout (the error, if it fails)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing but errors (for cron and timers); the exit code tells the result')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing but errors (for cron and timers); the exit code tells the result')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'promsnap;restore' {
            [CompletionResult]::new('--data-dir', '--data-dir', [CompletionResultType]::ParameterName, 'The data directory to restore into. It must not be in use by a running Prometheus, and must be empty unless --force (or --merge)')
            [CompletionResult]::new('--from', '--from', [CompletionResultType]::ParameterName, 'Only restore the blocks with data at or after TIME: as promsnap prints it (2026-01-01 03:00, UTC), RFC 3339 (2026-01-01T03:00:00Z), a date, Unix seconds, `now`, or relative to now (-7d, -12h, -90m)')
            [CompletionResult]::new('--to', '--to', [CompletionResultType]::ParameterName, 'Only restore the blocks with data at or before TIME (same forms as --from)')
            [CompletionResult]::new('--config-to', '--config-to', [CompletionResultType]::ParameterName, 'Also write the snapshot''s configuration and rule files below DIR, each at its original absolute path (/etc/prometheus/prometheus.yml goes to DIR/etc/prometheus/prometheus.yml)')
            [CompletionResult]::new('--instance', '--instance', [CompletionResultType]::ParameterName, 'Whose snapshot: an instance or HA group. `latest` needs it when the repository holds several; an id of another instance is refused')
            [CompletionResult]::new('--concurrency', '--concurrency', [CompletionResultType]::ParameterName, 'Blocks downloaded and unpacked at the same time, largest first [default: one per CPU, 4 to 16]')
            [CompletionResult]::new('--prometheus-url', '--prometheus-url', [CompletionResultType]::ParameterName, 'Prometheus base URL [default: http://localhost:9090]. Repeat it (or separate with commas) for replicas that share one data directory: the first that is ready (/-/ready) is used')
            [CompletionResult]::new('--prometheus-username', '--prometheus-username', [CompletionResultType]::ParameterName, 'User name for basic authentication (Prometheus behind a web config)')
            [CompletionResult]::new('--prometheus-password-file', '--prometheus-password-file', [CompletionResultType]::ParameterName, 'File holding the basic-authentication password')
            [CompletionResult]::new('--prometheus-bearer-token-file', '--prometheus-bearer-token-file', [CompletionResultType]::ParameterName, 'File holding a bearer token')
            [CompletionResult]::new('--prometheus-ca-cert', '--prometheus-ca-cert', [CompletionResultType]::ParameterName, 'PEM file with the CA that signed Prometheus''s TLS certificate')
            [CompletionResult]::new('--repo', '--repo', [CompletionResultType]::ParameterName, 'Where backups live: s3://BUCKET[/PREFIX], file:///PATH or a directory path')
            [CompletionResult]::new('--s3-endpoint', '--s3-endpoint', [CompletionResultType]::ParameterName, 'S3 endpoint URL, for S3-compatible stores (MinIO, Garage, Ceph, R2, ...)')
            [CompletionResult]::new('--s3-region', '--s3-region', [CompletionResultType]::ParameterName, 'S3 region [default: $AWS_REGION or the AWS profile''s, else us-east-1]')
            [CompletionResult]::new('--s3-path-style', '--s3-path-style', [CompletionResultType]::ParameterName, 'Address buckets as ENDPOINT/BUCKET rather than BUCKET.ENDPOINT; most self-hosted stores (MinIO, Garage, Ceph) need this')
            [CompletionResult]::new('--s3-checksums', '--s3-checksums', [CompletionResultType]::ParameterName, 'When to add CRC checksums to S3 requests. `when-required` works with every S3-compatible store; `when-supported` suits AWS S3')
            [CompletionResult]::new('--retries', '--retries', [CompletionResultType]::ParameterName, 'Retry a failed S3 or Prometheus request up to N times (connection errors, timeouts, 5xx, throttling), with exponential backoff and jitter [default: 5]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Abandon (and retry) a request that gets no answer within DURATION, e.g. 30s [default: 2m; snapshots at least 10m]')
            [CompletionResult]::new('--max-bandwidth', '--max-bandwidth', [CompletionResultType]::ParameterName, 'Limit uploads and downloads together to RATE, e.g. 50MiB/s or 12.5MB/s, so a backup does not starve the host''s network')
            [CompletionResult]::new('--metrics-file', '--metrics-file', [CompletionResultType]::ParameterName, 'Write this run''s metrics (success or failure) to FILE in node_exporter''s textfile-collector format (atomically; other commands'' metrics in FILE are kept)')
            [CompletionResult]::new('--pushgateway', '--pushgateway', [CompletionResultType]::ParameterName, 'Push the same metrics to a Prometheus Pushgateway, e.g. http://pushgateway:9091 (job promsnap, grouped by instance and command)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'TOML configuration file. Flags and PROMSNAP_* variables override it')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Restore into a non-empty directory by first moving its content aside into DIR.before-restore-<time>; with --config-to, move existing files that differ aside too (nothing is deleted)')
            [CompletionResult]::new('--merge', '--merge', [CompletionResultType]::ParameterName, 'Add the snapshot''s missing blocks to the data directory of a RUNNING Prometheus (2.39 or newer), which loads them at its next block reload, within about a minute. Blocks it already has are skipped; nothing in the directory is changed or deleted. With --prometheus-url promsnap reads the server''s retention and warns about blocks it would delete')
            [CompletionResult]::new('--if-empty', '--if-empty', [CompletionResultType]::ParameterName, 'Do nothing (exit 0, and say so) when the data directory already holds blocks; restore otherwise. For an init container that gives a new or replaced replica the history of its peer: a restarted pod keeps its data, without even reaching the repository. With `latest`, a repository that holds no snapshot of the instance yet (a new group''s first start) is nothing to seed from: exit 0, with a warning that names the instances it holds')
            [CompletionResult]::new('--no-data', '--no-data', [CompletionResultType]::ParameterName, 'Restore only the configuration files (with --config-to), no blocks')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the result as one JSON object on stdout (the error, if it fails)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing but errors (for cron and timers); the exit code tells the result')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing but errors (for cron and timers); the exit code tells the result')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'promsnap;prune' {
            [CompletionResult]::new('--keep-last', '--keep-last', [CompletionResultType]::ParameterName, 'Keep the N newest snapshots')
            [CompletionResult]::new('--keep-hourly', '--keep-hourly', [CompletionResultType]::ParameterName, 'Keep the newest snapshot of each of the last N hours that have one')
            [CompletionResult]::new('--keep-daily', '--keep-daily', [CompletionResultType]::ParameterName, 'Keep the newest snapshot of each of the last N days that have one')
            [CompletionResult]::new('--keep-weekly', '--keep-weekly', [CompletionResultType]::ParameterName, 'Keep the newest snapshot of each of the last N ISO weeks that have one')
            [CompletionResult]::new('--keep-monthly', '--keep-monthly', [CompletionResultType]::ParameterName, 'Keep the newest snapshot of each of the last N months that have one')
            [CompletionResult]::new('--keep-yearly', '--keep-yearly', [CompletionResultType]::ParameterName, 'Keep the newest snapshot of each of the last N years that have one')
            [CompletionResult]::new('--keep-within', '--keep-within', [CompletionResultType]::ParameterName, 'Keep every snapshot taken within DURATION of the newest one, e.g. 30d, 2w, 12h, 1y (Prometheus durations: y is 365 days, m is minutes; days step the calendar of --timezone, hours are elapsed time)')
            [CompletionResult]::new('--timezone', '--timezone', [CompletionResultType]::ParameterName, 'Time zone for hours, days, weeks, months and years, e.g. Europe/Berlin [default: UTC]')
            [CompletionResult]::new('--grace', '--grace', [CompletionResultType]::ParameterName, 'Objects no snapshot references are deleted only when older than this, since a running backup may be about to use them [default: 24h]')
            [CompletionResult]::new('--max-unused', '--max-unused', [CompletionResultType]::ParameterName, 'Repack a pack (format 2) when more than this share of it is data no remaining snapshot uses: its used blobs are copied into a new pack and the old one deleted. 0% repacks every pack with any unused byte (the most space back, the most copying); `unlimited` never repacks [default: 5%]')
            [CompletionResult]::new('--instance', '--instance', [CompletionResultType]::ParameterName, 'Only apply the policy to this instance''s snapshots (by default every instance keeps its own N)')
            [CompletionResult]::new('--lock-wait', '--lock-wait', [CompletionResultType]::ParameterName, 'How long to wait for running backups to finish [default: 10m]')
            [CompletionResult]::new('--repo', '--repo', [CompletionResultType]::ParameterName, 'Where backups live: s3://BUCKET[/PREFIX], file:///PATH or a directory path')
            [CompletionResult]::new('--s3-endpoint', '--s3-endpoint', [CompletionResultType]::ParameterName, 'S3 endpoint URL, for S3-compatible stores (MinIO, Garage, Ceph, R2, ...)')
            [CompletionResult]::new('--s3-region', '--s3-region', [CompletionResultType]::ParameterName, 'S3 region [default: $AWS_REGION or the AWS profile''s, else us-east-1]')
            [CompletionResult]::new('--s3-path-style', '--s3-path-style', [CompletionResultType]::ParameterName, 'Address buckets as ENDPOINT/BUCKET rather than BUCKET.ENDPOINT; most self-hosted stores (MinIO, Garage, Ceph) need this')
            [CompletionResult]::new('--s3-checksums', '--s3-checksums', [CompletionResultType]::ParameterName, 'When to add CRC checksums to S3 requests. `when-required` works with every S3-compatible store; `when-supported` suits AWS S3')
            [CompletionResult]::new('--retries', '--retries', [CompletionResultType]::ParameterName, 'Retry a failed S3 or Prometheus request up to N times (connection errors, timeouts, 5xx, throttling), with exponential backoff and jitter [default: 5]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Abandon (and retry) a request that gets no answer within DURATION, e.g. 30s [default: 2m; snapshots at least 10m]')
            [CompletionResult]::new('--max-bandwidth', '--max-bandwidth', [CompletionResultType]::ParameterName, 'Limit uploads and downloads together to RATE, e.g. 50MiB/s or 12.5MB/s, so a backup does not starve the host''s network')
            [CompletionResult]::new('--metrics-file', '--metrics-file', [CompletionResultType]::ParameterName, 'Write this run''s metrics (success or failure) to FILE in node_exporter''s textfile-collector format (atomically; other commands'' metrics in FILE are kept)')
            [CompletionResult]::new('--pushgateway', '--pushgateway', [CompletionResultType]::ParameterName, 'Push the same metrics to a Prometheus Pushgateway, e.g. http://pushgateway:9091 (job promsnap, grouped by instance and command)')
            [CompletionResult]::new('--lock-file', '--lock-file', [CompletionResultType]::ParameterName, 'Lock file that keeps two runs from overlapping; a second run exits 4 at once [default: DATA_DIR/.promsnap.lock for backup, else one file per repository (and Prometheus) in $XDG_RUNTIME_DIR or the temp dir]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'TOML configuration file. Flags and PROMSNAP_* variables override it')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Show what would be removed and why; change nothing')
            [CompletionResult]::new('--forget-damaged', '--forget-damaged', [CompletionResultType]::ParameterName, 'Delete manifests that cannot be read (damaged, truncated, tampered with). Without it, a damaged manifest keeps every object, since it might reference any, and prune exits 3. `promsnap verify` names them; restore an older copy instead if you have one')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the decisions and the result as one JSON object on stdout (the error, if it fails)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing but errors (for cron and timers); the exit code tells the result')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing but errors (for cron and timers); the exit code tells the result')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'promsnap;verify' {
            [CompletionResult]::new('--read-data-subset', '--read-data-subset', [CompletionResultType]::ParameterName, 'Download only part of the objects: N% (random), or n/m (the n-th of m fixed groups, e.g. 1/7 .. 7/7 on seven nights covers everything)')
            [CompletionResult]::new('--promtool', '--promtool', [CompletionResultType]::ParameterName, 'promtool to use for --restore-test [default: promtool on PATH]')
            [CompletionResult]::new('--instance', '--instance', [CompletionResultType]::ParameterName, 'Only snapshots of this instance (or HA group): with `latest` its newest, with no snapshot named all of its snapshots. An instance with no snapshot is an error that lists the instances there are')
            [CompletionResult]::new('--concurrency', '--concurrency', [CompletionResultType]::ParameterName, 'Objects checked at the same time, largest first [default: 4; with --deep one per CPU, 4 to 16]')
            [CompletionResult]::new('--scratch-dir', '--scratch-dir', [CompletionResultType]::ParameterName, 'Scratch space [default: the system temp dir]. --deep keeps a block''s small files there (index, meta.json, tombstones; chunks are checked in the stream); --restore-test restores whole snapshots into it')
            [CompletionResult]::new('--repo', '--repo', [CompletionResultType]::ParameterName, 'Where backups live: s3://BUCKET[/PREFIX], file:///PATH or a directory path')
            [CompletionResult]::new('--s3-endpoint', '--s3-endpoint', [CompletionResultType]::ParameterName, 'S3 endpoint URL, for S3-compatible stores (MinIO, Garage, Ceph, R2, ...)')
            [CompletionResult]::new('--s3-region', '--s3-region', [CompletionResultType]::ParameterName, 'S3 region [default: $AWS_REGION or the AWS profile''s, else us-east-1]')
            [CompletionResult]::new('--s3-path-style', '--s3-path-style', [CompletionResultType]::ParameterName, 'Address buckets as ENDPOINT/BUCKET rather than BUCKET.ENDPOINT; most self-hosted stores (MinIO, Garage, Ceph) need this')
            [CompletionResult]::new('--s3-checksums', '--s3-checksums', [CompletionResultType]::ParameterName, 'When to add CRC checksums to S3 requests. `when-required` works with every S3-compatible store; `when-supported` suits AWS S3')
            [CompletionResult]::new('--retries', '--retries', [CompletionResultType]::ParameterName, 'Retry a failed S3 or Prometheus request up to N times (connection errors, timeouts, 5xx, throttling), with exponential backoff and jitter [default: 5]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Abandon (and retry) a request that gets no answer within DURATION, e.g. 30s [default: 2m; snapshots at least 10m]')
            [CompletionResult]::new('--max-bandwidth', '--max-bandwidth', [CompletionResultType]::ParameterName, 'Limit uploads and downloads together to RATE, e.g. 50MiB/s or 12.5MB/s, so a backup does not starve the host''s network')
            [CompletionResult]::new('--metrics-file', '--metrics-file', [CompletionResultType]::ParameterName, 'Write this run''s metrics (success or failure) to FILE in node_exporter''s textfile-collector format (atomically; other commands'' metrics in FILE are kept)')
            [CompletionResult]::new('--pushgateway', '--pushgateway', [CompletionResultType]::ParameterName, 'Push the same metrics to a Prometheus Pushgateway, e.g. http://pushgateway:9091 (job promsnap, grouped by instance and command)')
            [CompletionResult]::new('--lock-file', '--lock-file', [CompletionResultType]::ParameterName, 'Lock file that keeps two runs from overlapping; a second run exits 4 at once [default: DATA_DIR/.promsnap.lock for backup, else one file per repository (and Prometheus) in $XDG_RUNTIME_DIR or the temp dir]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'TOML configuration file. Flags and PROMSNAP_* variables override it')
            [CompletionResult]::new('--all', '--all', [CompletionResultType]::ParameterName, 'Verify every snapshot (the default when no snapshot is named)')
            [CompletionResult]::new('--quick', '--quick', [CompletionResultType]::ParameterName, 'Only check that manifests parse and objects exist with the right size')
            [CompletionResult]::new('--deep', '--deep', [CompletionResultType]::ParameterName, 'Also decompress every block as it downloads and check each file''s SHA-256 and the TSDB structure (index, every chunk record''s CRC, tombstones, meta.json)')
            [CompletionResult]::new('--restore-test', '--restore-test', [CompletionResultType]::ParameterName, 'Also restore the snapshot(s) into a scratch directory and require `promtool tsdb list` to load every block. Without promtool (on PATH or --promtool) this is an error, unless --no-promtool')
            [CompletionResult]::new('--no-promtool', '--no-promtool', [CompletionResultType]::ParameterName, 'Run --restore-test without promtool: restore and check every hash, but do not ask Prometheus code to load the blocks')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the report as one JSON object on stdout (the error, if it fails)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing but errors (for cron and timers); the exit code tells the result')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing but errors (for cron and timers); the exit code tells the result')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'promsnap;check-dir' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'TOML configuration file. Flags and PROMSNAP_* variables override it')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the report as one JSON object on stdout (the error, if it fails)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing but errors (for cron and timers); the exit code tells the result')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing but errors (for cron and timers); the exit code tells the result')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'promsnap;unlock' {
            [CompletionResult]::new('--repo', '--repo', [CompletionResultType]::ParameterName, 'Where backups live: s3://BUCKET[/PREFIX], file:///PATH or a directory path')
            [CompletionResult]::new('--s3-endpoint', '--s3-endpoint', [CompletionResultType]::ParameterName, 'S3 endpoint URL, for S3-compatible stores (MinIO, Garage, Ceph, R2, ...)')
            [CompletionResult]::new('--s3-region', '--s3-region', [CompletionResultType]::ParameterName, 'S3 region [default: $AWS_REGION or the AWS profile''s, else us-east-1]')
            [CompletionResult]::new('--s3-path-style', '--s3-path-style', [CompletionResultType]::ParameterName, 'Address buckets as ENDPOINT/BUCKET rather than BUCKET.ENDPOINT; most self-hosted stores (MinIO, Garage, Ceph) need this')
            [CompletionResult]::new('--s3-checksums', '--s3-checksums', [CompletionResultType]::ParameterName, 'When to add CRC checksums to S3 requests. `when-required` works with every S3-compatible store; `when-supported` suits AWS S3')
            [CompletionResult]::new('--retries', '--retries', [CompletionResultType]::ParameterName, 'Retry a failed S3 or Prometheus request up to N times (connection errors, timeouts, 5xx, throttling), with exponential backoff and jitter [default: 5]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Abandon (and retry) a request that gets no answer within DURATION, e.g. 30s [default: 2m; snapshots at least 10m]')
            [CompletionResult]::new('--max-bandwidth', '--max-bandwidth', [CompletionResultType]::ParameterName, 'Limit uploads and downloads together to RATE, e.g. 50MiB/s or 12.5MB/s, so a backup does not starve the host''s network')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'TOML configuration file. Flags and PROMSNAP_* variables override it')
            [CompletionResult]::new('--all', '--all', [CompletionResultType]::ParameterName, 'Remove every lock, also live ones. Only when you are sure no promsnap is running against this repository')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing but errors (for cron and timers); the exit code tells the result')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing but errors (for cron and timers); the exit code tells the result')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'promsnap;serve' {
            [CompletionResult]::new('--schedule', '--schedule', [CompletionResultType]::ParameterName, 'When to back up: a cron expression of five fields (minute hour day-of-month month day-of-week), or six with seconds first, in UTC unless prefixed with CRON_TZ=ZONE, e.g. ''CRON_TZ=Europe/Berlin 15 3 * * *'' [config: serve.schedule]')
            [CompletionResult]::new('--random-delay', '--random-delay', [CompletionResultType]::ParameterName, 'Wait a random time up to DURATION after each scheduled time, so many servers on one schedule do not all hit the repository at once [default: 0s]')
            [CompletionResult]::new('--listen-address', '--listen-address', [CompletionResultType]::ParameterName, 'Where the HTTP endpoints listen [default: 0.0.0.0:8431]')
            [CompletionResult]::new('--verify', '--verify', [CompletionResultType]::ParameterName, 'After each successful backup, verify the new snapshot: quick (objects exist with their sizes), read (download every object and check its hash) or deep (also the TSDB structure)')
            [CompletionResult]::new('--shutdown-grace', '--shutdown-grace', [CompletionResultType]::ParameterName, 'On SIGTERM, how long a running backup may take to finish before it is aborted cleanly [default: 30s]')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log lines as text, or as one JSON object per line for log pipelines [default: text]')
            [CompletionResult]::new('--trigger-token-file', '--trigger-token-file', [CompletionResultType]::ParameterName, 'File holding the bearer token that POST /api/v1/backup requires. Without it the endpoint is off (404)')
            [CompletionResult]::new('--wait-ready', '--wait-ready', [CompletionResultType]::ParameterName, 'While Prometheus answers /-/ready with 503 (starting up, replaying its WAL), wait up to DURATION for it; 0 fails at once [default: 5m]')
            [CompletionResult]::new('--data-dir', '--data-dir', [CompletionResultType]::ParameterName, 'Prometheus''s data directory (its --storage.tsdb.path), on this machine. [default: asked from Prometheus''s /api/v1/status/flags]')
            [CompletionResult]::new('--instance', '--instance', [CompletionResultType]::ParameterName, 'Name this Prometheus in the repository [default: the host name]')
            [CompletionResult]::new('--concurrency', '--concurrency', [CompletionResultType]::ParameterName, 'Blocks packed and uploaded at the same time, largest first [default: 2]')
            [CompletionResult]::new('--zstd-level', '--zstd-level', [CompletionResultType]::ParameterName, 'zstd compression level, 1 (fastest) to 19 [default: 1]. promsnap tunes zstd for TSDB chunks, so level 1 already stores about as little as restic; higher levels trade CPU time for a few percent')
            [CompletionResult]::new('--zstd-threads', '--zstd-threads', [CompletionResultType]::ParameterName, 'zstd worker threads per block [default: number of CPUs]; 1 compresses on the thread that reads the block. With `--concurrency 1 --zstd-threads 1` a backup uses one core, to spare a busy host')
            [CompletionResult]::new('--prometheus-config', '--prometheus-config', [CompletionResultType]::ParameterName, 'Prometheus''s configuration file, stored with the snapshot together with every rule file its rule_files reference [default: the config.file Prometheus reports, when it is readable here; if not, a warning]. Given explicitly, a file that cannot be read is an error')
            [CompletionResult]::new('--include', '--include', [CompletionResultType]::ParameterName, 'Also store this file with the snapshot, e.g. file_sd target files or alertmanager.yml (repeatable). A file that cannot be read is an error')
            [CompletionResult]::new('--ha-group', '--ha-group', [CompletionResultType]::ParameterName, 'Prometheus high availability: replicas of one group that all run this backup store one snapshot per --min-interval between them. NAME names the group; `auto` derives it from the external labels minus the replica label(s). A replica that finds a recent snapshot of its group (or another replica storing one) skips, exits 0 and says why')
            [CompletionResult]::new('--replica-label', '--replica-label', [CompletionResultType]::ParameterName, 'External label(s) that tell HA replicas apart, for `--ha-group auto` [default: replica and prometheus_replica]')
            [CompletionResult]::new('--min-interval', '--min-interval', [CompletionResultType]::ParameterName, 'With --ha-group: skip when the group has a snapshot younger than this [default: 12h]')
            [CompletionResult]::new('--lock-wait', '--lock-wait', [CompletionResultType]::ParameterName, 'How long to wait for a prune that holds the repository [default: 10m]')
            [CompletionResult]::new('--init', '--init', [CompletionResultType]::ParameterName, 'Create the repository if --repo holds none yet (as `promsnap init` does). Without it, a backup into a location that is not a repository fails, so a typo or an unmounted share is noticed')
            [CompletionResult]::new('--repository-format', '--repository-format', [CompletionResultType]::ParameterName, 'The repository format to store new blocks in: 2 (the default; data that compaction only moved is stored once) or 1 (one archive per block, readable by promsnap 0.1). For tests and migrations')
            [CompletionResult]::new('--prometheus-url', '--prometheus-url', [CompletionResultType]::ParameterName, 'Prometheus base URL [default: http://localhost:9090]. Repeat it (or separate with commas) for replicas that share one data directory: the first that is ready (/-/ready) is used')
            [CompletionResult]::new('--prometheus-username', '--prometheus-username', [CompletionResultType]::ParameterName, 'User name for basic authentication (Prometheus behind a web config)')
            [CompletionResult]::new('--prometheus-password-file', '--prometheus-password-file', [CompletionResultType]::ParameterName, 'File holding the basic-authentication password')
            [CompletionResult]::new('--prometheus-bearer-token-file', '--prometheus-bearer-token-file', [CompletionResultType]::ParameterName, 'File holding a bearer token')
            [CompletionResult]::new('--prometheus-ca-cert', '--prometheus-ca-cert', [CompletionResultType]::ParameterName, 'PEM file with the CA that signed Prometheus''s TLS certificate')
            [CompletionResult]::new('--repo', '--repo', [CompletionResultType]::ParameterName, 'Where backups live: s3://BUCKET[/PREFIX], file:///PATH or a directory path')
            [CompletionResult]::new('--s3-endpoint', '--s3-endpoint', [CompletionResultType]::ParameterName, 'S3 endpoint URL, for S3-compatible stores (MinIO, Garage, Ceph, R2, ...)')
            [CompletionResult]::new('--s3-region', '--s3-region', [CompletionResultType]::ParameterName, 'S3 region [default: $AWS_REGION or the AWS profile''s, else us-east-1]')
            [CompletionResult]::new('--s3-path-style', '--s3-path-style', [CompletionResultType]::ParameterName, 'Address buckets as ENDPOINT/BUCKET rather than BUCKET.ENDPOINT; most self-hosted stores (MinIO, Garage, Ceph) need this')
            [CompletionResult]::new('--s3-checksums', '--s3-checksums', [CompletionResultType]::ParameterName, 'When to add CRC checksums to S3 requests. `when-required` works with every S3-compatible store; `when-supported` suits AWS S3')
            [CompletionResult]::new('--retries', '--retries', [CompletionResultType]::ParameterName, 'Retry a failed S3 or Prometheus request up to N times (connection errors, timeouts, 5xx, throttling), with exponential backoff and jitter [default: 5]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Abandon (and retry) a request that gets no answer within DURATION, e.g. 30s [default: 2m; snapshots at least 10m]')
            [CompletionResult]::new('--max-bandwidth', '--max-bandwidth', [CompletionResultType]::ParameterName, 'Limit uploads and downloads together to RATE, e.g. 50MiB/s or 12.5MB/s, so a backup does not starve the host''s network')
            [CompletionResult]::new('--metrics-file', '--metrics-file', [CompletionResultType]::ParameterName, 'Write this run''s metrics (success or failure) to FILE in node_exporter''s textfile-collector format (atomically; other commands'' metrics in FILE are kept)')
            [CompletionResult]::new('--pushgateway', '--pushgateway', [CompletionResultType]::ParameterName, 'Push the same metrics to a Prometheus Pushgateway, e.g. http://pushgateway:9091 (job promsnap, grouped by instance and command)')
            [CompletionResult]::new('--lock-file', '--lock-file', [CompletionResultType]::ParameterName, 'Lock file that keeps two runs from overlapping; a second run exits 4 at once [default: DATA_DIR/.promsnap.lock for backup, else one file per repository (and Prometheus) in $XDG_RUNTIME_DIR or the temp dir]')
            [CompletionResult]::new('--time', '--time', [CompletionResultType]::ParameterName, 'Record this as the snapshot''s time (RFC 3339) instead of now, e.g. when importing an old data directory with --from-dir')
            [CompletionResult]::new('--from-dir', '--from-dir', [CompletionResultType]::ParameterName, 'Back up this directory instead of asking Prometheus for a snapshot: an existing snapshot, or the data directory of a stopped Prometheus. Only blocks are stored; wal/ and chunks_head/ are skipped')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'TOML configuration file. Flags and PROMSNAP_* variables override it')
            [CompletionResult]::new('--skip-head', '--skip-head', [CompletionResultType]::ParameterName, 'Leave the in-memory head block out of the snapshot (faster; loses up to the last 2-3 hours of data)')
            [CompletionResult]::new('--keep-local-snapshot', '--keep-local-snapshot', [CompletionResultType]::ParameterName, 'Keep the local snapshot directory after the backup instead of removing it')
            [CompletionResult]::new('--prune', '--prune', [CompletionResultType]::ParameterName, 'After a successful backup, prune with the policy in the configuration file''s [prune] section. A failed prune exits 3: the backup is stored, only the housekeeping failed')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the result as one JSON object on stdout (the error, if it fails)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing but errors (for cron and timers); the exit code tells the result')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing but errors (for cron and timers); the exit code tells the result')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'promsnap;completions' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'TOML configuration file. Flags and PROMSNAP_* variables override it')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing but errors (for cron and timers); the exit code tells the result')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing but errors (for cron and timers); the exit code tells the result')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'promsnap;man' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'TOML configuration file. Flags and PROMSNAP_* variables override it')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing but errors (for cron and timers); the exit code tells the result')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing but errors (for cron and timers); the exit code tells the result')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'promsnap;help' {
            [CompletionResult]::new('init', 'init', [CompletionResultType]::ParameterValue, 'Create a repository: a local directory or an S3 bucket prefix')
            [CompletionResult]::new('backup', 'backup', [CompletionResultType]::ParameterValue, 'Snapshot a running Prometheus and store its blocks in the repository')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List the snapshots in a repository, grouped by instance, oldest first')
            [CompletionResult]::new('restore', 'restore', [CompletionResultType]::ParameterValue, 'Restore a snapshot into a Prometheus data directory')
            [CompletionResult]::new('prune', 'prune', [CompletionResultType]::ParameterValue, 'Apply a retention policy: forget old snapshots, delete unused blocks')
            [CompletionResult]::new('verify', 'verify', [CompletionResultType]::ParameterValue, 'Check that backups are whole and would restore (for CI and incidents)')
            [CompletionResult]::new('check-dir', 'check-dir', [CompletionResultType]::ParameterValue, 'Check the TSDB structure of the blocks in a local directory')
            [CompletionResult]::new('unlock', 'unlock', [CompletionResultType]::ParameterValue, 'Remove stale repository locks (left by crashed runs)')
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Run as a service: back up on a schedule, serve metrics and health')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script (commands and options)')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Print a man page in roff (for packagers: `man/` holds its output)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'promsnap;help;init' {
            break
        }
        'promsnap;help;backup' {
            break
        }
        'promsnap;help;list' {
            break
        }
        'promsnap;help;restore' {
            break
        }
        'promsnap;help;prune' {
            break
        }
        'promsnap;help;verify' {
            break
        }
        'promsnap;help;check-dir' {
            break
        }
        'promsnap;help;unlock' {
            break
        }
        'promsnap;help;serve' {
            break
        }
        'promsnap;help;completions' {
            break
        }
        'promsnap;help;man' {
            break
        }
        'promsnap;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
