
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
            cand backup 'Snapshot a running Prometheus and store its blocks in the repository'
            cand list 'List the snapshots in a repository, oldest first'
            cand restore 'Restore a snapshot into a Prometheus data directory'
            cand completions 'Print a shell completion script'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'promsnap;backup'= {
            cand --repo 'Where backups live: s3://BUCKET[/PREFIX], file:///PATH or a directory path'
            cand --s3-endpoint 'S3 endpoint URL, for S3-compatible stores (MinIO, Garage, Ceph, R2, ...)'
            cand --s3-region 'S3 region [default: $AWS_REGION or the AWS profile''s, else us-east-1]'
            cand --s3-path-style 'Address buckets as ENDPOINT/BUCKET rather than BUCKET.ENDPOINT; most self-hosted stores (MinIO, Garage, Ceph) need this'
            cand --s3-checksums 'When to add CRC checksums to S3 requests. `when-required` works with every S3-compatible store; `when-supported` suits AWS S3'
            cand --prometheus-url 'Prometheus base URL [default: http://localhost:9090]'
            cand --prometheus-username 'User name for basic authentication (Prometheus behind a web config)'
            cand --prometheus-password-file 'File holding the basic-authentication password'
            cand --prometheus-bearer-token-file 'File holding a bearer token'
            cand --prometheus-ca-cert 'PEM file with the CA that signed Prometheus''s TLS certificate'
            cand --data-dir 'Prometheus''s data directory (its --storage.tsdb.path), on this machine. [default: asked from Prometheus''s /api/v1/status/flags]'
            cand --from-dir 'Back up this directory instead of asking Prometheus for a snapshot: an existing snapshot, or the data directory of a stopped Prometheus. Only blocks are stored; wal/ and chunks_head/ are skipped'
            cand --instance 'Name this Prometheus in the repository [default: the host name]'
            cand --concurrency 'Blocks packed and uploaded at the same time [default: 2]'
            cand --zstd-level 'zstd compression level, 1 (fastest) to 19 [default: 3]'
            cand --zstd-threads 'zstd worker threads per block [default: number of CPUs]. With `--concurrency 1 --zstd-threads 1` promsnap uses about one core'
            cand --config 'TOML configuration file. Flags and PROMSNAP_* variables override it'
            cand --skip-head 'Leave the in-memory head block out of the snapshot (faster; loses up to the last 2-3 hours of data)'
            cand --keep-local-snapshot 'Keep the local snapshot directory after the backup instead of removing it'
            cand --json 'Print the result as one JSON object on stdout'
            cand -q 'Print nothing but errors (for cron and timers); the exit code tells the result'
            cand --quiet 'Print nothing but errors (for cron and timers); the exit code tells the result'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'promsnap;list'= {
            cand --repo 'Where backups live: s3://BUCKET[/PREFIX], file:///PATH or a directory path'
            cand --s3-endpoint 'S3 endpoint URL, for S3-compatible stores (MinIO, Garage, Ceph, R2, ...)'
            cand --s3-region 'S3 region [default: $AWS_REGION or the AWS profile''s, else us-east-1]'
            cand --s3-path-style 'Address buckets as ENDPOINT/BUCKET rather than BUCKET.ENDPOINT; most self-hosted stores (MinIO, Garage, Ceph) need this'
            cand --s3-checksums 'When to add CRC checksums to S3 requests. `when-required` works with every S3-compatible store; `when-supported` suits AWS S3'
            cand --instance 'Only snapshots of this instance'
            cand --config 'TOML configuration file. Flags and PROMSNAP_* variables override it'
            cand --json 'Print the snapshots as one JSON array on stdout'
            cand -q 'Print nothing but errors (for cron and timers); the exit code tells the result'
            cand --quiet 'Print nothing but errors (for cron and timers); the exit code tells the result'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'promsnap;restore'= {
            cand --repo 'Where backups live: s3://BUCKET[/PREFIX], file:///PATH or a directory path'
            cand --s3-endpoint 'S3 endpoint URL, for S3-compatible stores (MinIO, Garage, Ceph, R2, ...)'
            cand --s3-region 'S3 region [default: $AWS_REGION or the AWS profile''s, else us-east-1]'
            cand --s3-path-style 'Address buckets as ENDPOINT/BUCKET rather than BUCKET.ENDPOINT; most self-hosted stores (MinIO, Garage, Ceph) need this'
            cand --s3-checksums 'When to add CRC checksums to S3 requests. `when-required` works with every S3-compatible store; `when-supported` suits AWS S3'
            cand --data-dir 'The data directory to restore into. It must not be in use by a running Prometheus, and must be empty unless --force'
            cand --instance 'With `latest` or an id prefix: only consider snapshots of this instance'
            cand --concurrency 'Blocks downloaded and unpacked at the same time [default: 4]'
            cand --config 'TOML configuration file. Flags and PROMSNAP_* variables override it'
            cand --force 'Restore into a non-empty directory by first moving its content aside into DIR.before-restore-<time> (nothing is deleted)'
            cand --json 'Print the result as one JSON object on stdout'
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
        &'promsnap;help'= {
            cand backup 'Snapshot a running Prometheus and store its blocks in the repository'
            cand list 'List the snapshots in a repository, oldest first'
            cand restore 'Restore a snapshot into a Prometheus data directory'
            cand completions 'Print a shell completion script'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'promsnap;help;backup'= {
        }
        &'promsnap;help;list'= {
        }
        &'promsnap;help;restore'= {
        }
        &'promsnap;help;completions'= {
        }
        &'promsnap;help;help'= {
        }
    ]
    $completions[$command]
}
