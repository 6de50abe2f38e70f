# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_promsnap_global_optspecs
    string join \n config= q/quiet h/help V/version
end

function __fish_promsnap_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_promsnap_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_promsnap_using_subcommand
    set -l cmd (__fish_promsnap_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c promsnap -n "__fish_promsnap_needs_command" -l config -d 'TOML configuration file. Flags and PROMSNAP_* variables override it' -r -F
complete -c promsnap -n "__fish_promsnap_needs_command" -s q -l quiet -d 'Print nothing but errors (for cron and timers); the exit code tells the result'
complete -c promsnap -n "__fish_promsnap_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c promsnap -n "__fish_promsnap_needs_command" -s V -l version -d 'Print version'
complete -c promsnap -n "__fish_promsnap_needs_command" -f -a "init" -d 'Create a repository: a local directory or an S3 bucket prefix'
complete -c promsnap -n "__fish_promsnap_needs_command" -f -a "backup" -d 'Snapshot a running Prometheus and store its blocks in the repository'
complete -c promsnap -n "__fish_promsnap_needs_command" -f -a "list" -d 'List the snapshots in a repository, grouped by instance, oldest first'
complete -c promsnap -n "__fish_promsnap_needs_command" -f -a "restore" -d 'Restore a snapshot into a Prometheus data directory'
complete -c promsnap -n "__fish_promsnap_needs_command" -f -a "prune" -d 'Apply a retention policy: forget old snapshots, delete unused blocks'
complete -c promsnap -n "__fish_promsnap_needs_command" -f -a "verify" -d 'Check that backups are whole and would restore (for CI and incidents)'
complete -c promsnap -n "__fish_promsnap_needs_command" -f -a "check-dir" -d 'Check the TSDB structure of the blocks in a local directory'
complete -c promsnap -n "__fish_promsnap_needs_command" -f -a "unlock" -d 'Remove stale repository locks (left by crashed runs)'
complete -c promsnap -n "__fish_promsnap_needs_command" -f -a "serve" -d 'Run as a service: back up on a schedule, serve metrics and health'
complete -c promsnap -n "__fish_promsnap_needs_command" -f -a "completions" -d 'Print a shell completion script (commands and options)'
complete -c promsnap -n "__fish_promsnap_needs_command" -f -a "man" -d 'Print a man page in roff (for packagers: `man/` holds its output)'
complete -c promsnap -n "__fish_promsnap_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c promsnap -n "__fish_promsnap_using_subcommand init" -l repo -d 'Where backups live: s3://BUCKET[/PREFIX], file:///PATH or a directory path' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand init" -l s3-endpoint -d 'S3 endpoint URL, for S3-compatible stores (MinIO, Garage, Ceph, R2, ...)' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand init" -l s3-region -d 'S3 region [default: $AWS_REGION or the AWS profile\'s, else us-east-1]' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand init" -l s3-path-style -d 'Address buckets as ENDPOINT/BUCKET rather than BUCKET.ENDPOINT; most self-hosted stores (MinIO, Garage, Ceph) need this' -r -f -a "true\t''
false\t''"
complete -c promsnap -n "__fish_promsnap_using_subcommand init" -l s3-checksums -d 'When to add CRC checksums to S3 requests. `when-required` works with every S3-compatible store; `when-supported` suits AWS S3' -r -f -a "when-required\t'Only where the API requires one: works with every S3-compatible store'
when-supported\t'On every request that supports one (AWS S3 and stores that support the flexible checksum headers)'"
complete -c promsnap -n "__fish_promsnap_using_subcommand init" -l retries -d 'Retry a failed S3 or Prometheus request up to N times (connection errors, timeouts, 5xx, throttling), with exponential backoff and jitter [default: 5]' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand init" -l timeout -d 'Abandon (and retry) a request that gets no answer within DURATION, e.g. 30s [default: 2m; snapshots at least 10m]' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand init" -l max-bandwidth -d 'Limit uploads and downloads together to RATE, e.g. 50MiB/s or 12.5MB/s, so a backup does not starve the host\'s network' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand init" -l config -d 'TOML configuration file. Flags and PROMSNAP_* variables override it' -r -F
complete -c promsnap -n "__fish_promsnap_using_subcommand init" -l json -d 'Print the result as one JSON object on stdout (the error, if it fails)'
complete -c promsnap -n "__fish_promsnap_using_subcommand init" -s q -l quiet -d 'Print nothing but errors (for cron and timers); the exit code tells the result'
complete -c promsnap -n "__fish_promsnap_using_subcommand init" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c promsnap -n "__fish_promsnap_using_subcommand backup" -l wait-ready -d 'While Prometheus answers /-/ready with 503 (starting up, replaying its WAL), wait up to DURATION for it; 0 fails at once [default: 5m]' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand backup" -l data-dir -d 'Prometheus\'s data directory (its --storage.tsdb.path), on this machine. [default: asked from Prometheus\'s /api/v1/status/flags]' -r -F
complete -c promsnap -n "__fish_promsnap_using_subcommand backup" -l from-dir -d 'Back up this directory instead of asking Prometheus for a snapshot: an existing snapshot, or the data directory of a stopped Prometheus. Only blocks are stored; wal/ and chunks_head/ are skipped' -r -F
complete -c promsnap -n "__fish_promsnap_using_subcommand backup" -l instance -d 'Name this Prometheus in the repository [default: the host name]' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand backup" -l concurrency -d 'Blocks packed and uploaded at the same time, largest first [default: 2]' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand backup" -l zstd-level -d 'zstd compression level, 1 (fastest) to 19 [default: 1]. promsnap tunes zstd for TSDB chunks, so level 1 already stores about as little as restic; higher levels trade CPU time for a few percent' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand backup" -l zstd-threads -d 'zstd worker threads per block [default: number of CPUs]; 1 compresses on the thread that reads the block. With `--concurrency 1 --zstd-threads 1` a backup uses one core, to spare a busy host' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand backup" -l prometheus-config -d 'Prometheus\'s configuration file, stored with the snapshot together with every rule file its rule_files reference [default: the config.file Prometheus reports, when it is readable here; if not, a warning]. Given explicitly, a file that cannot be read is an error' -r -F
complete -c promsnap -n "__fish_promsnap_using_subcommand backup" -l include -d 'Also store this file with the snapshot, e.g. file_sd target files or alertmanager.yml (repeatable). A file that cannot be read is an error' -r -F
complete -c promsnap -n "__fish_promsnap_using_subcommand backup" -l ha-group -d 'Prometheus high availability: replicas of one group that all run this backup store one snapshot per --min-interval between them. NAME names the group; `auto` derives it from the external labels minus the replica label(s). A replica that finds a recent snapshot of its group (or another replica storing one) skips, exits 0 and says why' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand backup" -l replica-label -d 'External label(s) that tell HA replicas apart, for `--ha-group auto` [default: replica and prometheus_replica]' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand backup" -l min-interval -d 'With --ha-group: skip when the group has a snapshot younger than this [default: 12h]' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand backup" -l time -d 'Record this as the snapshot\'s time (RFC 3339) instead of now, e.g. when importing an old data directory with --from-dir' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand backup" -l lock-wait -d 'How long to wait for a prune that holds the repository [default: 10m]' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand backup" -l init -d 'Create the repository if --repo holds none yet (as `promsnap init` does). Without it, a backup into a location that is not a repository fails, so a typo or an unmounted share is noticed' -r -f -a "true\t''
false\t''"
complete -c promsnap -n "__fish_promsnap_using_subcommand backup" -l repository-format -d 'The repository format to store new blocks in: 2 (the default; data that compaction only moved is stored once) or 1 (one archive per block, readable by promsnap 0.1). For tests and migrations' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand backup" -l prometheus-url -d 'Prometheus base URL [default: http://localhost:9090]. Repeat it (or separate with commas) for replicas that share one data directory: the first that is ready (/-/ready) is used' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand backup" -l prometheus-username -d 'User name for basic authentication (Prometheus behind a web config)' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand backup" -l prometheus-password-file -d 'File holding the basic-authentication password' -r -F
complete -c promsnap -n "__fish_promsnap_using_subcommand backup" -l prometheus-bearer-token-file -d 'File holding a bearer token' -r -F
complete -c promsnap -n "__fish_promsnap_using_subcommand backup" -l prometheus-ca-cert -d 'PEM file with the CA that signed Prometheus\'s TLS certificate' -r -F
complete -c promsnap -n "__fish_promsnap_using_subcommand backup" -l repo -d 'Where backups live: s3://BUCKET[/PREFIX], file:///PATH or a directory path' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand backup" -l s3-endpoint -d 'S3 endpoint URL, for S3-compatible stores (MinIO, Garage, Ceph, R2, ...)' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand backup" -l s3-region -d 'S3 region [default: $AWS_REGION or the AWS profile\'s, else us-east-1]' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand backup" -l s3-path-style -d 'Address buckets as ENDPOINT/BUCKET rather than BUCKET.ENDPOINT; most self-hosted stores (MinIO, Garage, Ceph) need this' -r -f -a "true\t''
false\t''"
complete -c promsnap -n "__fish_promsnap_using_subcommand backup" -l s3-checksums -d 'When to add CRC checksums to S3 requests. `when-required` works with every S3-compatible store; `when-supported` suits AWS S3' -r -f -a "when-required\t'Only where the API requires one: works with every S3-compatible store'
when-supported\t'On every request that supports one (AWS S3 and stores that support the flexible checksum headers)'"
complete -c promsnap -n "__fish_promsnap_using_subcommand backup" -l retries -d 'Retry a failed S3 or Prometheus request up to N times (connection errors, timeouts, 5xx, throttling), with exponential backoff and jitter [default: 5]' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand backup" -l timeout -d 'Abandon (and retry) a request that gets no answer within DURATION, e.g. 30s [default: 2m; snapshots at least 10m]' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand backup" -l max-bandwidth -d 'Limit uploads and downloads together to RATE, e.g. 50MiB/s or 12.5MB/s, so a backup does not starve the host\'s network' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand backup" -l metrics-file -d 'Write this run\'s metrics (success or failure) to FILE in node_exporter\'s textfile-collector format (atomically; other commands\' metrics in FILE are kept)' -r -F
complete -c promsnap -n "__fish_promsnap_using_subcommand backup" -l pushgateway -d 'Push the same metrics to a Prometheus Pushgateway, e.g. http://pushgateway:9091 (job promsnap, grouped by instance and command)' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand backup" -l lock-file -d 'Lock file that keeps two runs from overlapping; a second run exits 4 at once [default: DATA_DIR/.promsnap.lock for backup, else one file per repository (and Prometheus) in $XDG_RUNTIME_DIR or the temp dir]' -r -F
complete -c promsnap -n "__fish_promsnap_using_subcommand backup" -l config -d 'TOML configuration file. Flags and PROMSNAP_* variables override it' -r -F
complete -c promsnap -n "__fish_promsnap_using_subcommand backup" -l skip-head -d 'Leave the in-memory head block out of the snapshot (faster; loses up to the last 2-3 hours of data)'
complete -c promsnap -n "__fish_promsnap_using_subcommand backup" -l keep-local-snapshot -d 'Keep the local snapshot directory after the backup instead of removing it'
complete -c promsnap -n "__fish_promsnap_using_subcommand backup" -l prune -d 'After a successful backup, prune with the policy in the configuration file\'s [prune] section. A failed prune exits 3: the backup is stored, only the housekeeping failed'
complete -c promsnap -n "__fish_promsnap_using_subcommand backup" -l json -d 'Print the result as one JSON object on stdout (the error, if it fails)'
complete -c promsnap -n "__fish_promsnap_using_subcommand backup" -s q -l quiet -d 'Print nothing but errors (for cron and timers); the exit code tells the result'
complete -c promsnap -n "__fish_promsnap_using_subcommand backup" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c promsnap -n "__fish_promsnap_using_subcommand list" -l instance -d 'Only snapshots of this instance or HA group' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand list" -l repo -d 'Where backups live: s3://BUCKET[/PREFIX], file:///PATH or a directory path' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand list" -l s3-endpoint -d 'S3 endpoint URL, for S3-compatible stores (MinIO, Garage, Ceph, R2, ...)' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand list" -l s3-region -d 'S3 region [default: $AWS_REGION or the AWS profile\'s, else us-east-1]' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand list" -l s3-path-style -d 'Address buckets as ENDPOINT/BUCKET rather than BUCKET.ENDPOINT; most self-hosted stores (MinIO, Garage, Ceph) need this' -r -f -a "true\t''
false\t''"
complete -c promsnap -n "__fish_promsnap_using_subcommand list" -l s3-checksums -d 'When to add CRC checksums to S3 requests. `when-required` works with every S3-compatible store; `when-supported` suits AWS S3' -r -f -a "when-required\t'Only where the API requires one: works with every S3-compatible store'
when-supported\t'On every request that supports one (AWS S3 and stores that support the flexible checksum headers)'"
complete -c promsnap -n "__fish_promsnap_using_subcommand list" -l retries -d 'Retry a failed S3 or Prometheus request up to N times (connection errors, timeouts, 5xx, throttling), with exponential backoff and jitter [default: 5]' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand list" -l timeout -d 'Abandon (and retry) a request that gets no answer within DURATION, e.g. 30s [default: 2m; snapshots at least 10m]' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand list" -l max-bandwidth -d 'Limit uploads and downloads together to RATE, e.g. 50MiB/s or 12.5MB/s, so a backup does not starve the host\'s network' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand list" -l config -d 'TOML configuration file. Flags and PROMSNAP_* variables override it' -r -F
complete -c promsnap -n "__fish_promsnap_using_subcommand list" -l json -d 'Print the snapshots as one JSON object on stdout (the error, if it fails)'
complete -c promsnap -n "__fish_promsnap_using_subcommand list" -s q -l quiet -d 'Print nothing but errors (for cron and timers); the exit code tells the result'
complete -c promsnap -n "__fish_promsnap_using_subcommand list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c promsnap -n "__fish_promsnap_using_subcommand restore" -l data-dir -d 'The data directory to restore into. It must not be in use by a running Prometheus, and must be empty unless --force (or --merge)' -r -F
complete -c promsnap -n "__fish_promsnap_using_subcommand restore" -l from -d 'Only restore the blocks with data at or after TIME: as promsnap prints it (2026-01-01 03:00, UTC), RFC 3339 (2026-01-01T03:00:00Z), a date, Unix seconds, `now`, or relative to now (-7d, -12h, -90m)' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand restore" -l to -d 'Only restore the blocks with data at or before TIME (same forms as --from)' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand restore" -l config-to -d 'Also write the snapshot\'s configuration and rule files below DIR, each at its original absolute path (/etc/prometheus/prometheus.yml goes to DIR/etc/prometheus/prometheus.yml)' -r -F
complete -c promsnap -n "__fish_promsnap_using_subcommand restore" -l instance -d 'Whose snapshot: an instance or HA group. `latest` needs it when the repository holds several; an id of another instance is refused' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand restore" -l concurrency -d 'Blocks downloaded and unpacked at the same time, largest first [default: one per CPU, 4 to 16]' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand restore" -l prometheus-url -d 'Prometheus base URL [default: http://localhost:9090]. Repeat it (or separate with commas) for replicas that share one data directory: the first that is ready (/-/ready) is used' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand restore" -l prometheus-username -d 'User name for basic authentication (Prometheus behind a web config)' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand restore" -l prometheus-password-file -d 'File holding the basic-authentication password' -r -F
complete -c promsnap -n "__fish_promsnap_using_subcommand restore" -l prometheus-bearer-token-file -d 'File holding a bearer token' -r -F
complete -c promsnap -n "__fish_promsnap_using_subcommand restore" -l prometheus-ca-cert -d 'PEM file with the CA that signed Prometheus\'s TLS certificate' -r -F
complete -c promsnap -n "__fish_promsnap_using_subcommand restore" -l repo -d 'Where backups live: s3://BUCKET[/PREFIX], file:///PATH or a directory path' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand restore" -l s3-endpoint -d 'S3 endpoint URL, for S3-compatible stores (MinIO, Garage, Ceph, R2, ...)' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand restore" -l s3-region -d 'S3 region [default: $AWS_REGION or the AWS profile\'s, else us-east-1]' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand restore" -l s3-path-style -d 'Address buckets as ENDPOINT/BUCKET rather than BUCKET.ENDPOINT; most self-hosted stores (MinIO, Garage, Ceph) need this' -r -f -a "true\t''
false\t''"
complete -c promsnap -n "__fish_promsnap_using_subcommand restore" -l s3-checksums -d 'When to add CRC checksums to S3 requests. `when-required` works with every S3-compatible store; `when-supported` suits AWS S3' -r -f -a "when-required\t'Only where the API requires one: works with every S3-compatible store'
when-supported\t'On every request that supports one (AWS S3 and stores that support the flexible checksum headers)'"
complete -c promsnap -n "__fish_promsnap_using_subcommand restore" -l retries -d 'Retry a failed S3 or Prometheus request up to N times (connection errors, timeouts, 5xx, throttling), with exponential backoff and jitter [default: 5]' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand restore" -l timeout -d 'Abandon (and retry) a request that gets no answer within DURATION, e.g. 30s [default: 2m; snapshots at least 10m]' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand restore" -l max-bandwidth -d 'Limit uploads and downloads together to RATE, e.g. 50MiB/s or 12.5MB/s, so a backup does not starve the host\'s network' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand restore" -l metrics-file -d 'Write this run\'s metrics (success or failure) to FILE in node_exporter\'s textfile-collector format (atomically; other commands\' metrics in FILE are kept)' -r -F
complete -c promsnap -n "__fish_promsnap_using_subcommand restore" -l pushgateway -d 'Push the same metrics to a Prometheus Pushgateway, e.g. http://pushgateway:9091 (job promsnap, grouped by instance and command)' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand restore" -l config -d 'TOML configuration file. Flags and PROMSNAP_* variables override it' -r -F
complete -c promsnap -n "__fish_promsnap_using_subcommand restore" -l force -d 'Restore into a non-empty directory by first moving its content aside into DIR.before-restore-<time>; with --config-to, move existing files that differ aside too (nothing is deleted)'
complete -c promsnap -n "__fish_promsnap_using_subcommand restore" -l merge -d 'Add the snapshot\'s missing blocks to the data directory of a RUNNING Prometheus (2.39 or newer), which loads them at its next block reload, within about a minute. Blocks it already has are skipped; nothing in the directory is changed or deleted. With --prometheus-url promsnap reads the server\'s retention and warns about blocks it would delete'
complete -c promsnap -n "__fish_promsnap_using_subcommand restore" -l if-empty -d 'Do nothing (exit 0, and say so) when the data directory already holds blocks; restore otherwise. For an init container that gives a new or replaced replica the history of its peer: a restarted pod keeps its data, without even reaching the repository. With `latest`, a repository that holds no snapshot of the instance yet (a new group\'s first start) is nothing to seed from: exit 0, with a warning that names the instances it holds'
complete -c promsnap -n "__fish_promsnap_using_subcommand restore" -l no-data -d 'Restore only the configuration files (with --config-to), no blocks'
complete -c promsnap -n "__fish_promsnap_using_subcommand restore" -l json -d 'Print the result as one JSON object on stdout (the error, if it fails)'
complete -c promsnap -n "__fish_promsnap_using_subcommand restore" -s q -l quiet -d 'Print nothing but errors (for cron and timers); the exit code tells the result'
complete -c promsnap -n "__fish_promsnap_using_subcommand restore" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c promsnap -n "__fish_promsnap_using_subcommand prune" -l keep-last -d 'Keep the N newest snapshots' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand prune" -l keep-hourly -d 'Keep the newest snapshot of each of the last N hours that have one' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand prune" -l keep-daily -d 'Keep the newest snapshot of each of the last N days that have one' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand prune" -l keep-weekly -d 'Keep the newest snapshot of each of the last N ISO weeks that have one' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand prune" -l keep-monthly -d 'Keep the newest snapshot of each of the last N months that have one' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand prune" -l keep-yearly -d 'Keep the newest snapshot of each of the last N years that have one' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand prune" -l keep-within -d 'Keep every snapshot taken within DURATION of the newest one, e.g. 30d, 2w, 12h, 1y (Prometheus durations: y is 365 days, m is minutes; days step the calendar of --timezone, hours are elapsed time)' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand prune" -l timezone -d 'Time zone for hours, days, weeks, months and years, e.g. Europe/Berlin [default: UTC]' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand prune" -l grace -d 'Objects no snapshot references are deleted only when older than this, since a running backup may be about to use them [default: 24h]' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand prune" -l max-unused -d 'Repack a pack (format 2) when more than this share of it is data no remaining snapshot uses: its used blobs are copied into a new pack and the old one deleted. 0% repacks every pack with any unused byte (the most space back, the most copying); `unlimited` never repacks [default: 5%]' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand prune" -l instance -d 'Only apply the policy to this instance\'s snapshots (by default every instance keeps its own N)' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand prune" -l lock-wait -d 'How long to wait for running backups to finish [default: 10m]' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand prune" -l repo -d 'Where backups live: s3://BUCKET[/PREFIX], file:///PATH or a directory path' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand prune" -l s3-endpoint -d 'S3 endpoint URL, for S3-compatible stores (MinIO, Garage, Ceph, R2, ...)' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand prune" -l s3-region -d 'S3 region [default: $AWS_REGION or the AWS profile\'s, else us-east-1]' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand prune" -l s3-path-style -d 'Address buckets as ENDPOINT/BUCKET rather than BUCKET.ENDPOINT; most self-hosted stores (MinIO, Garage, Ceph) need this' -r -f -a "true\t''
false\t''"
complete -c promsnap -n "__fish_promsnap_using_subcommand prune" -l s3-checksums -d 'When to add CRC checksums to S3 requests. `when-required` works with every S3-compatible store; `when-supported` suits AWS S3' -r -f -a "when-required\t'Only where the API requires one: works with every S3-compatible store'
when-supported\t'On every request that supports one (AWS S3 and stores that support the flexible checksum headers)'"
complete -c promsnap -n "__fish_promsnap_using_subcommand prune" -l retries -d 'Retry a failed S3 or Prometheus request up to N times (connection errors, timeouts, 5xx, throttling), with exponential backoff and jitter [default: 5]' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand prune" -l timeout -d 'Abandon (and retry) a request that gets no answer within DURATION, e.g. 30s [default: 2m; snapshots at least 10m]' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand prune" -l max-bandwidth -d 'Limit uploads and downloads together to RATE, e.g. 50MiB/s or 12.5MB/s, so a backup does not starve the host\'s network' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand prune" -l metrics-file -d 'Write this run\'s metrics (success or failure) to FILE in node_exporter\'s textfile-collector format (atomically; other commands\' metrics in FILE are kept)' -r -F
complete -c promsnap -n "__fish_promsnap_using_subcommand prune" -l pushgateway -d 'Push the same metrics to a Prometheus Pushgateway, e.g. http://pushgateway:9091 (job promsnap, grouped by instance and command)' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand prune" -l lock-file -d 'Lock file that keeps two runs from overlapping; a second run exits 4 at once [default: DATA_DIR/.promsnap.lock for backup, else one file per repository (and Prometheus) in $XDG_RUNTIME_DIR or the temp dir]' -r -F
complete -c promsnap -n "__fish_promsnap_using_subcommand prune" -l config -d 'TOML configuration file. Flags and PROMSNAP_* variables override it' -r -F
complete -c promsnap -n "__fish_promsnap_using_subcommand prune" -l dry-run -d 'Show what would be removed and why; change nothing'
complete -c promsnap -n "__fish_promsnap_using_subcommand prune" -l forget-damaged -d 'Delete manifests that cannot be read (damaged, truncated, tampered with). Without it, a damaged manifest keeps every object, since it might reference any, and prune exits 3. `promsnap verify` names them; restore an older copy instead if you have one'
complete -c promsnap -n "__fish_promsnap_using_subcommand prune" -l json -d 'Print the decisions and the result as one JSON object on stdout (the error, if it fails)'
complete -c promsnap -n "__fish_promsnap_using_subcommand prune" -s q -l quiet -d 'Print nothing but errors (for cron and timers); the exit code tells the result'
complete -c promsnap -n "__fish_promsnap_using_subcommand prune" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c promsnap -n "__fish_promsnap_using_subcommand verify" -l read-data-subset -d 'Download only part of the objects: N% (random), or n/m (the n-th of m fixed groups, e.g. 1/7 .. 7/7 on seven nights covers everything)' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand verify" -l promtool -d 'promtool to use for --restore-test [default: promtool on PATH]' -r -F
complete -c promsnap -n "__fish_promsnap_using_subcommand verify" -l instance -d 'Only snapshots of this instance (or HA group): with `latest` its newest, with no snapshot named all of its snapshots. An instance with no snapshot is an error that lists the instances there are' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand verify" -l concurrency -d 'Objects checked at the same time, largest first [default: 4; with --deep one per CPU, 4 to 16]' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand verify" -l scratch-dir -d 'Scratch space [default: the system temp dir]. --deep keeps a block\'s small files there (index, meta.json, tombstones; chunks are checked in the stream); --restore-test restores whole snapshots into it' -r -F
complete -c promsnap -n "__fish_promsnap_using_subcommand verify" -l repo -d 'Where backups live: s3://BUCKET[/PREFIX], file:///PATH or a directory path' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand verify" -l s3-endpoint -d 'S3 endpoint URL, for S3-compatible stores (MinIO, Garage, Ceph, R2, ...)' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand verify" -l s3-region -d 'S3 region [default: $AWS_REGION or the AWS profile\'s, else us-east-1]' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand verify" -l s3-path-style -d 'Address buckets as ENDPOINT/BUCKET rather than BUCKET.ENDPOINT; most self-hosted stores (MinIO, Garage, Ceph) need this' -r -f -a "true\t''
false\t''"
complete -c promsnap -n "__fish_promsnap_using_subcommand verify" -l s3-checksums -d 'When to add CRC checksums to S3 requests. `when-required` works with every S3-compatible store; `when-supported` suits AWS S3' -r -f -a "when-required\t'Only where the API requires one: works with every S3-compatible store'
when-supported\t'On every request that supports one (AWS S3 and stores that support the flexible checksum headers)'"
complete -c promsnap -n "__fish_promsnap_using_subcommand verify" -l retries -d 'Retry a failed S3 or Prometheus request up to N times (connection errors, timeouts, 5xx, throttling), with exponential backoff and jitter [default: 5]' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand verify" -l timeout -d 'Abandon (and retry) a request that gets no answer within DURATION, e.g. 30s [default: 2m; snapshots at least 10m]' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand verify" -l max-bandwidth -d 'Limit uploads and downloads together to RATE, e.g. 50MiB/s or 12.5MB/s, so a backup does not starve the host\'s network' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand verify" -l metrics-file -d 'Write this run\'s metrics (success or failure) to FILE in node_exporter\'s textfile-collector format (atomically; other commands\' metrics in FILE are kept)' -r -F
complete -c promsnap -n "__fish_promsnap_using_subcommand verify" -l pushgateway -d 'Push the same metrics to a Prometheus Pushgateway, e.g. http://pushgateway:9091 (job promsnap, grouped by instance and command)' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand verify" -l lock-file -d 'Lock file that keeps two runs from overlapping; a second run exits 4 at once [default: DATA_DIR/.promsnap.lock for backup, else one file per repository (and Prometheus) in $XDG_RUNTIME_DIR or the temp dir]' -r -F
complete -c promsnap -n "__fish_promsnap_using_subcommand verify" -l config -d 'TOML configuration file. Flags and PROMSNAP_* variables override it' -r -F
complete -c promsnap -n "__fish_promsnap_using_subcommand verify" -l all -d 'Verify every snapshot (the default when no snapshot is named)'
complete -c promsnap -n "__fish_promsnap_using_subcommand verify" -l quick -d 'Only check that manifests parse and objects exist with the right size'
complete -c promsnap -n "__fish_promsnap_using_subcommand verify" -l deep -d 'Also decompress every block as it downloads and check each file\'s SHA-256 and the TSDB structure (index, every chunk record\'s CRC, tombstones, meta.json)'
complete -c promsnap -n "__fish_promsnap_using_subcommand verify" -l restore-test -d 'Also restore the snapshot(s) into a scratch directory and require `promtool tsdb list` to load every block. Without promtool (on PATH or --promtool) this is an error, unless --no-promtool'
complete -c promsnap -n "__fish_promsnap_using_subcommand verify" -l no-promtool -d 'Run --restore-test without promtool: restore and check every hash, but do not ask Prometheus code to load the blocks'
complete -c promsnap -n "__fish_promsnap_using_subcommand verify" -l json -d 'Print the report as one JSON object on stdout (the error, if it fails)'
complete -c promsnap -n "__fish_promsnap_using_subcommand verify" -s q -l quiet -d 'Print nothing but errors (for cron and timers); the exit code tells the result'
complete -c promsnap -n "__fish_promsnap_using_subcommand verify" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c promsnap -n "__fish_promsnap_using_subcommand check-dir" -l config -d 'TOML configuration file. Flags and PROMSNAP_* variables override it' -r -F
complete -c promsnap -n "__fish_promsnap_using_subcommand check-dir" -l json -d 'Print the report as one JSON object on stdout (the error, if it fails)'
complete -c promsnap -n "__fish_promsnap_using_subcommand check-dir" -s q -l quiet -d 'Print nothing but errors (for cron and timers); the exit code tells the result'
complete -c promsnap -n "__fish_promsnap_using_subcommand check-dir" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c promsnap -n "__fish_promsnap_using_subcommand unlock" -l repo -d 'Where backups live: s3://BUCKET[/PREFIX], file:///PATH or a directory path' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand unlock" -l s3-endpoint -d 'S3 endpoint URL, for S3-compatible stores (MinIO, Garage, Ceph, R2, ...)' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand unlock" -l s3-region -d 'S3 region [default: $AWS_REGION or the AWS profile\'s, else us-east-1]' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand unlock" -l s3-path-style -d 'Address buckets as ENDPOINT/BUCKET rather than BUCKET.ENDPOINT; most self-hosted stores (MinIO, Garage, Ceph) need this' -r -f -a "true\t''
false\t''"
complete -c promsnap -n "__fish_promsnap_using_subcommand unlock" -l s3-checksums -d 'When to add CRC checksums to S3 requests. `when-required` works with every S3-compatible store; `when-supported` suits AWS S3' -r -f -a "when-required\t'Only where the API requires one: works with every S3-compatible store'
when-supported\t'On every request that supports one (AWS S3 and stores that support the flexible checksum headers)'"
complete -c promsnap -n "__fish_promsnap_using_subcommand unlock" -l retries -d 'Retry a failed S3 or Prometheus request up to N times (connection errors, timeouts, 5xx, throttling), with exponential backoff and jitter [default: 5]' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand unlock" -l timeout -d 'Abandon (and retry) a request that gets no answer within DURATION, e.g. 30s [default: 2m; snapshots at least 10m]' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand unlock" -l max-bandwidth -d 'Limit uploads and downloads together to RATE, e.g. 50MiB/s or 12.5MB/s, so a backup does not starve the host\'s network' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand unlock" -l config -d 'TOML configuration file. Flags and PROMSNAP_* variables override it' -r -F
complete -c promsnap -n "__fish_promsnap_using_subcommand unlock" -l all -d 'Remove every lock, also live ones. Only when you are sure no promsnap is running against this repository'
complete -c promsnap -n "__fish_promsnap_using_subcommand unlock" -s q -l quiet -d 'Print nothing but errors (for cron and timers); the exit code tells the result'
complete -c promsnap -n "__fish_promsnap_using_subcommand unlock" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c promsnap -n "__fish_promsnap_using_subcommand serve" -l schedule -d 'When to back up: a cron expression of five fields (minute hour day-of-month month day-of-week), or six with seconds first, in UTC unless prefixed with CRON_TZ=ZONE, e.g. \'CRON_TZ=Europe/Berlin 15 3 * * *\' [config: serve.schedule]' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand serve" -l random-delay -d 'Wait a random time up to DURATION after each scheduled time, so many servers on one schedule do not all hit the repository at once [default: 0s]' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand serve" -l listen-address -d 'Where the HTTP endpoints listen [default: 0.0.0.0:8431]' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand serve" -l verify -d 'After each successful backup, verify the new snapshot: quick (objects exist with their sizes), read (download every object and check its hash) or deep (also the TSDB structure)' -r -f -a "quick\t''
read\t''
deep\t''"
complete -c promsnap -n "__fish_promsnap_using_subcommand serve" -l shutdown-grace -d 'On SIGTERM, how long a running backup may take to finish before it is aborted cleanly [default: 30s]' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand serve" -l log-format -d 'Log lines as text, or as one JSON object per line for log pipelines [default: text]' -r -f -a "text\t''
json\t''"
complete -c promsnap -n "__fish_promsnap_using_subcommand serve" -l trigger-token-file -d 'File holding the bearer token that POST /api/v1/backup requires. Without it the endpoint is off (404)' -r -F
complete -c promsnap -n "__fish_promsnap_using_subcommand serve" -l wait-ready -d 'While Prometheus answers /-/ready with 503 (starting up, replaying its WAL), wait up to DURATION for it; 0 fails at once [default: 5m]' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand serve" -l data-dir -d 'Prometheus\'s data directory (its --storage.tsdb.path), on this machine. [default: asked from Prometheus\'s /api/v1/status/flags]' -r -F
complete -c promsnap -n "__fish_promsnap_using_subcommand serve" -l instance -d 'Name this Prometheus in the repository [default: the host name]' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand serve" -l concurrency -d 'Blocks packed and uploaded at the same time, largest first [default: 2]' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand serve" -l zstd-level -d 'zstd compression level, 1 (fastest) to 19 [default: 1]. promsnap tunes zstd for TSDB chunks, so level 1 already stores about as little as restic; higher levels trade CPU time for a few percent' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand serve" -l zstd-threads -d 'zstd worker threads per block [default: number of CPUs]; 1 compresses on the thread that reads the block. With `--concurrency 1 --zstd-threads 1` a backup uses one core, to spare a busy host' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand serve" -l prometheus-config -d 'Prometheus\'s configuration file, stored with the snapshot together with every rule file its rule_files reference [default: the config.file Prometheus reports, when it is readable here; if not, a warning]. Given explicitly, a file that cannot be read is an error' -r -F
complete -c promsnap -n "__fish_promsnap_using_subcommand serve" -l include -d 'Also store this file with the snapshot, e.g. file_sd target files or alertmanager.yml (repeatable). A file that cannot be read is an error' -r -F
complete -c promsnap -n "__fish_promsnap_using_subcommand serve" -l ha-group -d 'Prometheus high availability: replicas of one group that all run this backup store one snapshot per --min-interval between them. NAME names the group; `auto` derives it from the external labels minus the replica label(s). A replica that finds a recent snapshot of its group (or another replica storing one) skips, exits 0 and says why' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand serve" -l replica-label -d 'External label(s) that tell HA replicas apart, for `--ha-group auto` [default: replica and prometheus_replica]' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand serve" -l min-interval -d 'With --ha-group: skip when the group has a snapshot younger than this [default: 12h]' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand serve" -l lock-wait -d 'How long to wait for a prune that holds the repository [default: 10m]' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand serve" -l init -d 'Create the repository if --repo holds none yet (as `promsnap init` does). Without it, a backup into a location that is not a repository fails, so a typo or an unmounted share is noticed' -r -f -a "true\t''
false\t''"
complete -c promsnap -n "__fish_promsnap_using_subcommand serve" -l repository-format -d 'The repository format to store new blocks in: 2 (the default; data that compaction only moved is stored once) or 1 (one archive per block, readable by promsnap 0.1). For tests and migrations' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand serve" -l prometheus-url -d 'Prometheus base URL [default: http://localhost:9090]. Repeat it (or separate with commas) for replicas that share one data directory: the first that is ready (/-/ready) is used' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand serve" -l prometheus-username -d 'User name for basic authentication (Prometheus behind a web config)' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand serve" -l prometheus-password-file -d 'File holding the basic-authentication password' -r -F
complete -c promsnap -n "__fish_promsnap_using_subcommand serve" -l prometheus-bearer-token-file -d 'File holding a bearer token' -r -F
complete -c promsnap -n "__fish_promsnap_using_subcommand serve" -l prometheus-ca-cert -d 'PEM file with the CA that signed Prometheus\'s TLS certificate' -r -F
complete -c promsnap -n "__fish_promsnap_using_subcommand serve" -l repo -d 'Where backups live: s3://BUCKET[/PREFIX], file:///PATH or a directory path' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand serve" -l s3-endpoint -d 'S3 endpoint URL, for S3-compatible stores (MinIO, Garage, Ceph, R2, ...)' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand serve" -l s3-region -d 'S3 region [default: $AWS_REGION or the AWS profile\'s, else us-east-1]' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand serve" -l s3-path-style -d 'Address buckets as ENDPOINT/BUCKET rather than BUCKET.ENDPOINT; most self-hosted stores (MinIO, Garage, Ceph) need this' -r -f -a "true\t''
false\t''"
complete -c promsnap -n "__fish_promsnap_using_subcommand serve" -l s3-checksums -d 'When to add CRC checksums to S3 requests. `when-required` works with every S3-compatible store; `when-supported` suits AWS S3' -r -f -a "when-required\t'Only where the API requires one: works with every S3-compatible store'
when-supported\t'On every request that supports one (AWS S3 and stores that support the flexible checksum headers)'"
complete -c promsnap -n "__fish_promsnap_using_subcommand serve" -l retries -d 'Retry a failed S3 or Prometheus request up to N times (connection errors, timeouts, 5xx, throttling), with exponential backoff and jitter [default: 5]' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand serve" -l timeout -d 'Abandon (and retry) a request that gets no answer within DURATION, e.g. 30s [default: 2m; snapshots at least 10m]' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand serve" -l max-bandwidth -d 'Limit uploads and downloads together to RATE, e.g. 50MiB/s or 12.5MB/s, so a backup does not starve the host\'s network' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand serve" -l metrics-file -d 'Write this run\'s metrics (success or failure) to FILE in node_exporter\'s textfile-collector format (atomically; other commands\' metrics in FILE are kept)' -r -F
complete -c promsnap -n "__fish_promsnap_using_subcommand serve" -l pushgateway -d 'Push the same metrics to a Prometheus Pushgateway, e.g. http://pushgateway:9091 (job promsnap, grouped by instance and command)' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand serve" -l lock-file -d 'Lock file that keeps two runs from overlapping; a second run exits 4 at once [default: DATA_DIR/.promsnap.lock for backup, else one file per repository (and Prometheus) in $XDG_RUNTIME_DIR or the temp dir]' -r -F
complete -c promsnap -n "__fish_promsnap_using_subcommand serve" -l time -d 'Record this as the snapshot\'s time (RFC 3339) instead of now, e.g. when importing an old data directory with --from-dir' -r
complete -c promsnap -n "__fish_promsnap_using_subcommand serve" -l from-dir -d 'Back up this directory instead of asking Prometheus for a snapshot: an existing snapshot, or the data directory of a stopped Prometheus. Only blocks are stored; wal/ and chunks_head/ are skipped' -r -F
complete -c promsnap -n "__fish_promsnap_using_subcommand serve" -l config -d 'TOML configuration file. Flags and PROMSNAP_* variables override it' -r -F
complete -c promsnap -n "__fish_promsnap_using_subcommand serve" -l skip-head -d 'Leave the in-memory head block out of the snapshot (faster; loses up to the last 2-3 hours of data)'
complete -c promsnap -n "__fish_promsnap_using_subcommand serve" -l keep-local-snapshot -d 'Keep the local snapshot directory after the backup instead of removing it'
complete -c promsnap -n "__fish_promsnap_using_subcommand serve" -l prune -d 'After a successful backup, prune with the policy in the configuration file\'s [prune] section. A failed prune exits 3: the backup is stored, only the housekeeping failed'
complete -c promsnap -n "__fish_promsnap_using_subcommand serve" -l json -d 'Print the result as one JSON object on stdout (the error, if it fails)'
complete -c promsnap -n "__fish_promsnap_using_subcommand serve" -s q -l quiet -d 'Print nothing but errors (for cron and timers); the exit code tells the result'
complete -c promsnap -n "__fish_promsnap_using_subcommand serve" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c promsnap -n "__fish_promsnap_using_subcommand completions" -l config -d 'TOML configuration file. Flags and PROMSNAP_* variables override it' -r -F
complete -c promsnap -n "__fish_promsnap_using_subcommand completions" -s q -l quiet -d 'Print nothing but errors (for cron and timers); the exit code tells the result'
complete -c promsnap -n "__fish_promsnap_using_subcommand completions" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c promsnap -n "__fish_promsnap_using_subcommand man" -l config -d 'TOML configuration file. Flags and PROMSNAP_* variables override it' -r -F
complete -c promsnap -n "__fish_promsnap_using_subcommand man" -s q -l quiet -d 'Print nothing but errors (for cron and timers); the exit code tells the result'
complete -c promsnap -n "__fish_promsnap_using_subcommand man" -s h -l help -d 'Print help'
complete -c promsnap -n "__fish_promsnap_using_subcommand help; and not __fish_seen_subcommand_from init backup list restore prune verify check-dir unlock serve completions man help" -f -a "init" -d 'Create a repository: a local directory or an S3 bucket prefix'
complete -c promsnap -n "__fish_promsnap_using_subcommand help; and not __fish_seen_subcommand_from init backup list restore prune verify check-dir unlock serve completions man help" -f -a "backup" -d 'Snapshot a running Prometheus and store its blocks in the repository'
complete -c promsnap -n "__fish_promsnap_using_subcommand help; and not __fish_seen_subcommand_from init backup list restore prune verify check-dir unlock serve completions man help" -f -a "list" -d 'List the snapshots in a repository, grouped by instance, oldest first'
complete -c promsnap -n "__fish_promsnap_using_subcommand help; and not __fish_seen_subcommand_from init backup list restore prune verify check-dir unlock serve completions man help" -f -a "restore" -d 'Restore a snapshot into a Prometheus data directory'
complete -c promsnap -n "__fish_promsnap_using_subcommand help; and not __fish_seen_subcommand_from init backup list restore prune verify check-dir unlock serve completions man help" -f -a "prune" -d 'Apply a retention policy: forget old snapshots, delete unused blocks'
complete -c promsnap -n "__fish_promsnap_using_subcommand help; and not __fish_seen_subcommand_from init backup list restore prune verify check-dir unlock serve completions man help" -f -a "verify" -d 'Check that backups are whole and would restore (for CI and incidents)'
complete -c promsnap -n "__fish_promsnap_using_subcommand help; and not __fish_seen_subcommand_from init backup list restore prune verify check-dir unlock serve completions man help" -f -a "check-dir" -d 'Check the TSDB structure of the blocks in a local directory'
complete -c promsnap -n "__fish_promsnap_using_subcommand help; and not __fish_seen_subcommand_from init backup list restore prune verify check-dir unlock serve completions man help" -f -a "unlock" -d 'Remove stale repository locks (left by crashed runs)'
complete -c promsnap -n "__fish_promsnap_using_subcommand help; and not __fish_seen_subcommand_from init backup list restore prune verify check-dir unlock serve completions man help" -f -a "serve" -d 'Run as a service: back up on a schedule, serve metrics and health'
complete -c promsnap -n "__fish_promsnap_using_subcommand help; and not __fish_seen_subcommand_from init backup list restore prune verify check-dir unlock serve completions man help" -f -a "completions" -d 'Print a shell completion script (commands and options)'
complete -c promsnap -n "__fish_promsnap_using_subcommand help; and not __fish_seen_subcommand_from init backup list restore prune verify check-dir unlock serve completions man help" -f -a "man" -d 'Print a man page in roff (for packagers: `man/` holds its output)'
complete -c promsnap -n "__fish_promsnap_using_subcommand help; and not __fish_seen_subcommand_from init backup list restore prune verify check-dir unlock serve completions man help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
