#!/usr/bin/env bash
# Run librdkafka's own regression test suite against a Kafka-protocol broker.
#
#   interop/librdkafka/run.sh [--bootstrap HOST:PORT] [--all | TEST...]
#
#   (no TEST)      the tests in allowlist.txt
#   TEST...        these test numbers (e.g. 0001 0017 or 0017_compression;
#                  NNNN@consumer runs it with KIP-848 consumer groups,
#                  NNNN@idempotent with every producer idempotent (-P);
#                  NNNN@ssl, NNNN@sasl_ssl, NNNN@sasl_plaintext, NNNN@acl run it
#                  against the security broker, see below)
#   --all          every test in librdkafka's table (tests/test.c) except the
#                  manual 8xxx ones
#   --bootstrap    use a running broker; without it a `target/release/medulla
#                  serve` is started on a free loopback port with a fresh data
#                  dir (and stopped at the end). It must already be built:
#                  cargo build --release -p medulla
#   --full         run without quick mode (-Q): more records, longer runs,
#                  and no skipped SUB_TEST()s (see below)
#   --list         print the test table (number, entries, local?) and exit
#
# Each test number runs in its own `test-runner` process (a test-runner timeout
# SIGKILLs the whole process, and one hung test must not take the others with
# it), in quick mode without socket-emulation tests (-Q -E), one entry at a
# time (-p1). Quick mode silently skips every subtest declared with SUB_TEST()
# rather than SUB_TEST_QUICK() and still reports PASS, so an allowlist line can
# say `NNNN full` to run that one test without -Q. Numbers that have a broker
# entry run with -L, so their `_local` / `_mock` siblings (librdkafka's
# in-process mock cluster; they never touch our broker) are left out; numbers
# with only local entries run with -l. Per-test logs, JSON reports and verdicts
# (RUN.log, RUN.json, RUN.verdict), test.conf, results.tsv and the broker's log
# go to target/interop-librdkafka/<UTC time>/.
#
# Runs go RDK_JOBS (default 2) at a time against the one broker: most of a
# test's time is spent waiting on client and broker timeouts, not on the CPU.
# Each keeps its own test-runner, log and report, and the verdict lines and
# results.tsv follow the selection's order, whatever the order of completion.
# The runs in serial_tests (in this script) and every `sockem` run run alone,
# with nothing else in flight. RDK_JOBS=1 runs everything one after another.
#
# Security runs (issue 6): a run NNNN@MODE, MODE one of ssl, sasl_ssl, sasl_plaintext
# or acl, goes to a second broker, started once per run.sh when the selection has
# such a run: four listeners (PLAINTEXT, SSL with ssl.client.auth=required,
# SASL_PLAINTEXT, SASL_SSL), PEM keys from a throwaway CA (pki.sh, Debian's openssl),
# SASL PLAIN (JAAS users) and SCRAM-SHA-256/512 (users made with
# AlterUserScramCredentials), connections.max.reauth.ms=10000, and the authorizer on
# with allow.everyone.if.no.acl.found=true and super.users=User:admin (the SASL user and,
# by ssl.principal.mapping.rules, the client certificate's CN). Each mode has its own
# test.conf (test-MODE.conf): ssl is mTLS as User:admin; sasl_ssl is SCRAM-SHA-512 over
# TLS (plus the client certificate, which that listener does not ask for); sasl_plaintext
# is PLAIN; acl is unauthenticated PLAINTEXT (User:ANONYMOUS, which the tests' own
# `User:*` deny ACLs then cover). ssl and sasl_ssl runs get trivup's SSL_* variables.
# Every run gets KAFKA_PATH, a shim whose bin/kafka-acls.sh and bin/kafka-topics.sh turn
# the flags the suite passes to Kafka's scripts into `medulla acl …` / `medulla topic …`
# (MEDULLA_BIN), and BROKERS. The SCRAM users are made with `medulla user add`.
# An allowlist line's `subtests=TEXT` runs only the subtests whose name contains TEXT
# (test-runner's SUBTESTS; `_` is a literal underscore, the names hold function names).
#
# Exit status: 1 if an allowlisted test failed (or, when TESTs are named on the
# command line, if any of them failed); 0 otherwise. SKIP is not a failure.
#
# Environment knobs: MEDULLA_CACHE (build cache, default ~/.cache/medulla),
# MEDULLA_BIN (broker binary), RDK_JOBS (test runs in flight at once, default
# 2; bash >= 5.1, else 1), RDK_TEST_TIMEOUT_S (per test, default 300),
# RDK_TIMEOUT_MULTIPLIER (test.timeout.multiplier, default 1),
# RDK_TEST_KAFKA_VERSION, TEST_DEBUG (passed through to test-runner, e.g.
# TEST_DEBUG=protocol,broker,fetch).
set -uo pipefail

# The Kafka version our ApiVersions response claims. Tests gate features on it
# (TEST_BRKVER), e.g. 4.x skips the MsgVersion 0/1 and fallback cases.
KAFKA_VERSION="${RDK_TEST_KAFKA_VERSION:-4.1.0}"
# The suite assumes auto-created topics get 4 partitions.
NUM_PARTITIONS=4
PER_TEST_TIMEOUT_S="${RDK_TEST_TIMEOUT_S:-300}"
TIMEOUT_MULTIPLIER="${RDK_TIMEOUT_MULTIPLIER:-1}"
BROKER_START_TIMEOUT_S=30

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$here/../.." && pwd)"
allowlist="$here/allowlist.txt"

usage() { sed -n '2,/^set -uo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }

bootstrap=""
mode="allowlist"
list_only=0
quick_flag="-Q"
requested=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --bootstrap) bootstrap="${2:?--bootstrap needs HOST:PORT}"; shift 2 ;;
        --bootstrap=*) bootstrap="${1#*=}"; shift ;;
        --all) mode="all"; shift ;;
        --list) list_only=1; shift ;;
        --full) quick_flag=""; shift ;;
        -h|--help) usage; exit 0 ;;
        -*) echo "unknown option $1" >&2; usage >&2; exit 2 ;;
        *) mode="named"; requested+=("$1"); shift ;;
    esac
done

log() { echo "[librdkafka-suite] $*" >&2; }

max_jobs="${RDK_JOBS:-2}"
if [[ ! "$max_jobs" =~ ^[1-9][0-9]*$ ]]; then
    log "RDK_JOBS must be a positive integer, not '$max_jobs'"
    exit 2
fi
if ((max_jobs > 1)) && ((BASH_VERSINFO[0] * 100 + BASH_VERSINFO[1] < 501)); then
    # reap_one needs `wait -n -p VAR PID...` (bash 5.1).
    log "bash $BASH_VERSION cannot run tests in parallel (needs 5.1): RDK_JOBS=1"
    max_jobs=1
fi

build="$("$here/build.sh" | tail -1)" || { log "librdkafka build failed"; exit 2; }
tests_dir="$build/tests"

# ---- the test table: "<number> <entry name> <local:0|1>" per entry ----------
table="$(
    awk '/^struct test tests\[\] = \{/ { on = 1; next } on && /^\};/ { exit } on' "$tests_dir/test.c" |
        tr '\n' ' ' |
        grep -o '_TEST( *[0-9][0-9a-zA-Z_]*, *[^,)]*' |
        sed -E 's/^_TEST\( *//; s/, */ /' |
        awk '{ name = $1; num = substr(name, 1, 4); loc = ($0 ~ /TEST_F_LOCAL/) ? 1 : 0;
               print num, name, loc }'
)"
[[ -n "$table" ]] || { log "could not parse the test table in $tests_dir/test.c"; exit 2; }

# entries_of NUM [-L|-l]: the entry names of a number (only broker / only local ones).
entries_of() {
    awk -v n="$1" -v scope="${2:-}" '$1 == n && !(scope == "-L" && $3) && !(scope == "-l" && !$3) { print $2 }' \
        <<<"$table" | paste -sd, -
}
has_broker_entry() { awk -v n="$1" '$1 == n && $3 == 0 { f = 1 } END { exit !f }' <<<"$table"; }
known_number() { awk -v n="$1" '$1 == n { f = 1 } END { exit !f }' <<<"$table"; }
# scope_of NUM: -L (only its broker entries) if it has one, else -l (only local ones).
scope_of() { if has_broker_entry "$1"; then echo "-L"; else echo "-l"; fi; }

if [[ $list_only -eq 1 ]]; then
    awk '{ printf "%s  %-50s %s\n", $1, $2, ($3 ? "local" : "broker") }' <<<"$table"
    exit 0
fi

# Allowlisted runs: the first token of every non-comment line is a test number;
# further tokens: `full` runs it without quick mode, `consumer` runs it with
# TEST_CONSUMER_GROUP_PROTOCOL=consumer (KIP-848 consumer groups) as the run
# NNNN@consumer, `idempotent` runs it with test-runner's -P (enable.idempotence=true
# for every client the test creates) as the run NNNN@idempotent, `sockem` runs it
# without -E (the test needs librdkafka's socket emulation, which -E excludes; sockem
# sits inside the client, so the broker is still a real one), `ssl`, `sasl_ssl`,
# `sasl_plaintext` or `acl` runs it against the security broker as NNNN@MODE, and
# `subtests=TEXT` runs only the subtests whose name contains TEXT. A number may have one
# line of each kind.
security_modes=(ssl sasl_ssl sasl_plaintext acl)
allowlisted=""
allow_full=""
allow_sockem=""
allow_subtests="" # "RUN TEXT" lines
if [[ -f "$allowlist" ]]; then
    # shellcheck disable=SC2016 # an awk program: $1, $i are awk's
    runs_awk='NF { id = $1; flag = 0; sub_text = ""
        for (i = 2; i <= NF; i++) { if ($i == "consumer") id = id "@consumer"; if ($i == want) flag = 1 }
        for (i = 2; i <= NF; i++) { if ($i == "ssl" || $i == "sasl_ssl" || $i == "sasl_plaintext" || $i == "acl") id = id "@" $i }
        for (i = 2; i <= NF; i++) { if ($i == "idempotent") id = id "@idempotent"; if ($i ~ /^subtests=/) sub_text = substr($i, 10) }
        if (want == "subtests") { if (sub_text != "") print id, sub_text }
        else if (want == "" || flag) print id }'
    allowlisted="$(sed 's/#.*//' "$allowlist" | awk -v want= "$runs_awk")"
    allow_full="$(sed 's/#.*//' "$allowlist" | awk -v want=full "$runs_awk")"
    allow_sockem="$(sed 's/#.*//' "$allowlist" | awk -v want=sockem "$runs_awk")"
    allow_subtests="$(sed 's/#.*//' "$allowlist" | awk -v want=subtests "$runs_awk")"
fi
is_allowlisted() { grep -qx "$1" <<<"$allowlisted"; }

# Runs that must not share the broker with another run when RDK_JOBS > 1: each
# runs alone, after the runs in flight have finished and before any other starts.
# An entry is a run (NNNN@consumer) or a number (all of its runs). Every `sockem`
# run is serial as well, without being listed: socket emulation delays requests
# by fixed amounts measured against the test's own timeouts.
serial_tests=(
    # fetch_queue_backoff: each record must reach the consumer within
    # fetch.queue.backoff.ms + 30 ms; with a second test loading the broker one
    # came 12 ms late ("Only 3/4 messages were in profile").
    0127
)
is_serial() {
    local s
    if grep -qx "$1" <<<"$allow_sockem"; then return 0; fi
    for s in "${serial_tests[@]}"; do
        if [[ "$1" == "$s" || "${1%%@*}" == "$s" ]]; then return 0; fi
    done
    return 1
}

normalize() {
    # "17", "0017", "0017_compression" -> "0017"
    local t="${1%%_*}"
    [[ "$t" =~ ^[0-9]+$ ]] || { echo ""; return; }
    printf '%04d' "$((10#$t))"
}

case "$mode" in
    allowlist) selected="$allowlisted" ;;
    all) selected="$(awk '$1 !~ /^8/ { print $1 }' <<<"$table" | uniq)" ;;
    named)
        selected=""
        for t in "${requested[@]}"; do
            # NNNN[@consumer][@MODE][@idempotent], the order run ids have.
            suffix=""
            if [[ "$t" == *@idempotent ]]; then suffix="@idempotent" t="${t%@idempotent}"; fi
            for m in "${security_modes[@]}"; do
                if [[ "$t" == *"@$m" ]]; then suffix="@$m$suffix" t="${t%"@$m"}"; fi
            done
            if [[ "$t" == *@consumer ]]; then suffix="@consumer$suffix" t="${t%@consumer}"; fi
            n="$(normalize "$t")"
            if [[ -z "$n" ]] || ! known_number "$n"; then
                log "no test $t in librdkafka's table (try --list)"
                exit 2
            fi
            selected+="$n$suffix"$'\n'
        done
        ;;
esac
selected="$(grep -v '^$' <<<"$selected" | awk '!seen[$0]++')"
[[ -n "$selected" ]] || { log "no tests selected"; exit 2; }

# ---- run directory and broker ----------------------------------------------
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
run_dir="$repo_root/target/interop-librdkafka/$stamp"
mkdir -p "$run_dir"
broker_pid=""
data_dir=""
sec_broker_pid=""
sec_data_dir=""
declare -A inflight=() # background test runs: pid -> run (see reap_one)

# kill_tree PID: SIGTERM to PID's descendants, deepest first, then to PID.
# shellcheck disable=SC2317 # called from cleanup (the EXIT trap)
kill_tree() {
    local child
    for child in $(pgrep -P "$1" 2>/dev/null); do kill_tree "$child"; done
    kill "$1" 2>/dev/null
}

# shellcheck disable=SC2317 # the EXIT trap
cleanup() {
    # Runs still in flight (interrupted): background jobs ignore SIGINT.
    local pid
    for pid in "${!inflight[@]}"; do kill_tree "$pid"; done
    for pid in "$broker_pid" "$sec_broker_pid"; do
        if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -9 "$pid" 2>/dev/null
            wait "$pid" 2>/dev/null
        fi
    done
    [[ -n "$data_dir" ]] && rm -rf "$data_dir"
    [[ -n "$sec_data_dir" ]] && rm -rf "$sec_data_dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null ||
        echo $((20000 + RANDOM % 20000))
}

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

if [[ -z "$bootstrap" ]]; then
    broker_bin="${MEDULLA_BIN:-$repo_root/target/release/medulla}"
    if [[ ! -x "$broker_bin" ]]; then
        log "$broker_bin not found: build it first (cargo build --release -p medulla) or pass --bootstrap HOST:PORT"
        exit 2
    fi
    port="$(free_port)"
    data_dir="$(mktemp -d "${TMPDIR:-/tmp}/medulla-rdk-suite.XXXXXX")"
    log "starting $broker_bin on 127.0.0.1:$port (data dir $data_dir, log $run_dir/broker.log)"
    "$broker_bin" serve --data-dir "$data_dir" --kafka-listen "127.0.0.1:$port" \
        --registry-listen off --override "num.partitions=$NUM_PARTITIONS" >"$run_dir/broker.log" 2>&1 &
    broker_pid=$!
    deadline=$((SECONDS + BROKER_START_TIMEOUT_S))
    until port_open 127.0.0.1 "$port"; do
        if ! kill -0 "$broker_pid" 2>/dev/null; then
            log "broker exited before accepting connections; last lines of its log:"
            tail -20 "$run_dir/broker.log" >&2
            exit 2
        fi
        if ((SECONDS >= deadline)); then
            log "broker did not accept connections on port $port within ${BROKER_START_TIMEOUT_S}s"
            exit 2
        fi
        sleep 0.2
    done
    bootstrap="127.0.0.1:$port"
else
    host="${bootstrap%:*}" port="${bootstrap##*:}"
    port_open "$host" "$port" || { log "nothing accepts connections on $bootstrap"; exit 2; }
fi

conf="$run_dir/test.conf"
cat >"$conf" <<EOF
# Written by interop/librdkafka/run.sh
bootstrap.servers=$bootstrap
# Random topic names so reruns against one broker never see old data.
test.topic.random=true
test.timeout.multiplier=$TIMEOUT_MULTIPLIER
EOF

# ---- the security broker (only when a selected run has a security mode) -------
# mode_of RUN: the run's security mode, or nothing.
mode_of() {
    local m
    for m in "${security_modes[@]}"; do
        if [[ "$1" == *"@$m" || "$1" == *"@$m@"* ]]; then
            echo "$m"
            return
        fi
    done
}
# The medulla binary the KAFKA_PATH shim and the security broker use.
medulla_cli="${MEDULLA_BIN:-$repo_root/target/release/medulla}"
ssl_env=()
declare -A mode_conf=()
if grep -qE "@($(IFS='|' && echo "${security_modes[*]}"))(@|$)" <<<"$selected"; then
    [[ -x "$medulla_cli" ]] || { log "$medulla_cli not found: security runs need it (cargo build --release -p medulla)"; exit 2; }
    pki="$run_dir/pki"
    "$here/pki.sh" "$pki" || { log "pki.sh failed (it needs Debian's openssl: scripts/install-test-deps.sh)"; exit 2; }
    key_password="$(cat "$pki/password")"
    p_plain="$(free_port)" p_ssl="$(free_port)" p_sasl="$(free_port)" p_sasl_ssl="$(free_port)"
    sec_data_dir="$(mktemp -d "${TMPDIR:-/tmp}/medulla-rdk-security.XXXXXX")"
    plain_jaas='org.apache.kafka.common.security.plain.PlainLoginModule required user_admin="admin-secret";'
    cat >"$run_dir/security-broker.properties" <<PROPERTIES
# Written by interop/librdkafka/run.sh: the security broker.
listeners=PLAINTEXT://127.0.0.1:$p_plain,SSL://127.0.0.1:$p_ssl,SASL_PLAINTEXT://127.0.0.1:$p_sasl,SASL_SSL://127.0.0.1:$p_sasl_ssl
num.partitions=$NUM_PARTITIONS
ssl.keystore.type=PEM
ssl.keystore.location=$pki/broker.keystore.pem
ssl.truststore.type=PEM
ssl.truststore.location=$pki/ca.pem
listener.name.ssl.ssl.client.auth=required
ssl.principal.mapping.rules=RULE:^CN=([^,]+),.*\$/\$1/,DEFAULT
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_plaintext.plain.sasl.jaas.config=$plain_jaas
listener.name.sasl_ssl.plain.sasl.jaas.config=$plain_jaas
connections.max.reauth.ms=10000
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=true
super.users=User:admin
PROPERTIES
    log "starting the security broker: PLAINTEXT $p_plain, SSL $p_ssl, SASL_PLAINTEXT $p_sasl, SASL_SSL $p_sasl_ssl (log $run_dir/security-broker.log)"
    "$medulla_cli" serve --data-dir "$sec_data_dir" --registry-listen off \
        --config "$run_dir/security-broker.properties" >"$run_dir/security-broker.log" 2>&1 &
    sec_broker_pid=$!
    deadline=$((SECONDS + BROKER_START_TIMEOUT_S))
    for p in "$p_plain" "$p_ssl" "$p_sasl" "$p_sasl_ssl"; do
        until port_open 127.0.0.1 "$p"; do
            if ! kill -0 "$sec_broker_pid" 2>/dev/null || ((SECONDS >= deadline)); then
                log "the security broker did not come up on port $p; last lines of its log:"
                tail -20 "$run_dir/security-broker.log" >&2
                exit 2
            fi
            sleep 0.2
        done
    done
    # The SCRAM user, over PLAINTEXT as User:ANONYMOUS (no ACL on the cluster yet).
    echo admin-secret >"$pki/admin.password"
    for mechanism in SCRAM-SHA-256 SCRAM-SHA-512; do
        "$medulla_cli" user add admin --bootstrap "127.0.0.1:$p_plain" --mechanism "$mechanism" \
            --password-file "$pki/admin.password" >>"$run_dir/security-setup.log" 2>&1 ||
            { log "medulla user add admin --mechanism $mechanism failed (see $run_dir/security-setup.log)"; exit 2; }
    done

    tls_conf="ssl.ca.location=$pki/ca.pem
ssl.certificate.location=$pki/client.pem
ssl.key.location=$pki/client.key
ssl.key.password=$key_password"
    sasl_conf="sasl.username=admin
sasl.password=admin-secret"
    # write_mode_conf MODE BOOTSTRAP LINES
    write_mode_conf() {
        mode_conf[$1]="$run_dir/test-$1.conf"
        printf '# Written by interop/librdkafka/run.sh (%s runs)\nbootstrap.servers=%s\ntest.topic.random=true\ntest.timeout.multiplier=%s\n%s\n' \
            "$1" "$2" "$TIMEOUT_MULTIPLIER" "$3" >"${mode_conf[$1]}"
    }
    write_mode_conf ssl "127.0.0.1:$p_ssl" "security.protocol=SSL
$tls_conf"
    write_mode_conf sasl_ssl "127.0.0.1:$p_sasl_ssl" "security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
$sasl_conf
$tls_conf"
    write_mode_conf sasl_plaintext "127.0.0.1:$p_sasl" "security.protocol=SASL_PLAINTEXT
sasl.mechanism=PLAIN
$sasl_conf"
    write_mode_conf acl "127.0.0.1:$p_plain" "# unauthenticated: User:ANONYMOUS"
    # What trivup gives 0097_ssl_verify.
    ssl_env=(SSL_pkcs="$pki/client.p12" SSL_password="$key_password"
        SSL_pub_der="$pki/client.der" SSL_pub_pem="$pki/client.pem"
        SSL_priv_der="$pki/client.key.der" SSL_priv_pem="$pki/client.key"
        SSL_ca_der="$pki/ca.der" SSL_all_cas_pem="$pki/ca.pem")
fi

log "broker $bootstrap, TEST_KAFKA_VERSION=$KAFKA_VERSION, logs in $run_dir"
log "$(wc -l <<<"$selected") test(s), ${PER_TEST_TIMEOUT_S}s timeout each, $max_jobs at a time"

# ---- run ---------------------------------------------------------------------
strip_ansi() { sed -E 's/\x1b\[[0-9;]*m//g'; }

# run_one RUN: runs one test run (test-runner, its log and JSON report) and
# writes its verdict to $run_dir/RUN.verdict as shell assignments (verdict,
# secs, entries, detail), renamed into place once complete (the file stays in
# the run directory). With RDK_JOBS > 1 it runs in a background job;
# report_ready prints the verdicts in the selection's order.
run_one() {
    local run="$1"
    local num="${run%%@*}"
    local protocol_env=() idempotent_flag="" scope entries quick sockem_flag
    local test_log="$run_dir/$run.log" report="$run_dir/$run.json"
    local verdict detail secs rc start states n_passed n_failed reason first_failure
    if [[ "$run" == *@consumer* ]]; then protocol_env=(TEST_CONSUMER_GROUP_PROTOCOL=consumer); fi
    if [[ "$run" == *@idempotent ]]; then idempotent_flag="-P"; fi
    local mode run_conf="$conf" run_bootstrap="$bootstrap" mode_env=() subtests
    mode="$(mode_of "$run")"
    if [[ -n "$mode" ]]; then
        run_conf="${mode_conf[$mode]}"
        run_bootstrap="$(sed -n 's/^bootstrap.servers=//p' "$run_conf")"
        if [[ "$mode" == ssl || "$mode" == sasl_ssl ]]; then mode_env=("${ssl_env[@]}"); fi
    fi
    subtests="$(awk -v r="$run" '$1 == r { print $2; exit }' <<<"$allow_subtests")"
    if [[ -n "$subtests" ]]; then mode_env+=(SUBTESTS="$subtests"); fi
    scope="$(scope_of "$num")"
    entries="$(entries_of "$num" "$scope")"
    quick="$quick_flag"
    if grep -qx "$run" <<<"$allow_full"; then quick=""; fi
    sockem_flag="-E"
    if grep -qx "$run" <<<"$allow_sockem"; then sockem_flag=""; fi
    rm -f "$report"

    if [[ -n "$broker_pid" ]] && ! kill -0 "$broker_pid" 2>/dev/null; then
        verdict="FAIL" detail="broker is no longer running (see $run_dir/broker.log)" secs=0
    elif [[ -n "$mode" ]] && ! kill -0 "$sec_broker_pid" 2>/dev/null; then
        verdict="FAIL" detail="the security broker is no longer running (see $run_dir/security-broker.log)" secs=0
    else
        start=$SECONDS
        # The outer subshell swallows bash's "Aborted" job notice: test-runner
        # abort()s (rc 134) when a failed test leaves client threads behind.
        # LD_LIBRARY_PATH must point at this build: Debian's librdkafka1 (kcat's
        # 2.0.2) would otherwise be picked up for librdkafka.so.1.
        (
            (
                cd "$tests_dir" &&
                    exec env "${protocol_env[@]}" "${mode_env[@]}" TESTS="$num" TEST_KAFKA_VERSION="$KAFKA_VERSION" \
                        RDKAFKA_TEST_CONF="$run_conf" TEST_REPORT="$report" \
                        KAFKA_PATH="$here/shim" BROKERS="$run_bootstrap" MEDULLA_BIN="$medulla_cli" \
                        RDKAFKA_GITVER="medulla-interop" \
                        LD_LIBRARY_PATH="../src:../src-cpp${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
                        timeout --foreground -k 10 "$PER_TEST_TIMEOUT_S" ./test-runner $quick $idempotent_flag $sockem_flag -p1 "$scope"
            ) >"$test_log" 2>&1
            exit $? # (keeps bash from exec-ing the inner subshell in place)
        ) 2>/dev/null
        rc=$?
        secs=$((SECONDS - start))

        # Per-entry states from the JSON report (only entries of this number).
        states=""
        if [[ -f "$report" ]]; then
            states="$(grep -o '"name": "'"$num"'_[^"]*", "state": "[A-Z]*"' "$report" |
                sed -E 's/"name": "([^"]*)", "state": "([A-Z]*)"/\1 \2/')"
        fi
        n_passed=$(grep -c ' PASSED$' <<<"$states")
        n_failed=$(grep -c -E ' (FAILED|RUNNING)$' <<<"$states")
        # The summary table line of a failed / skipped entry carries the reason.
        reason="$(strip_ansi <"$test_log" | grep -E "^\| *${num}_[^|]*\| *(FAILED|SKIPPED|RUNNING) *\|" |
            awk -F'|' '{ r = $5; gsub(/^ +| +$/, "", r); n = $2; gsub(/ /, "", n); if (r != "") print n ": " r }' |
            paste -sd';' - | cut -c1-300)"
        # First failure message: '### Test "X" failed at file:line:func() at DATE: ###'
        # followed by the message line.
        first_failure="$(strip_ansi <"$test_log" | awk '
            /^### Test ".*" failed at / && !done {
                where = $0; sub(/^### Test "/, "", where); sub(/\(\) at .*/, "", where)
                sub(/" failed at /, " at ", where); getline msg; print where ": " msg; done = 1 }' |
            cut -c1-300)"
        if [[ $rc -eq 124 || $rc -eq 137 ]]; then
            verdict="FAIL" detail="timed out (rc $rc; ${PER_TEST_TIMEOUT_S}s or the test's own timeout) ${first_failure:-$reason}"
        elif [[ $rc -ne 0 || $n_failed -gt 0 ]]; then
            verdict="FAIL" detail="rc $rc: ${first_failure:-$reason}"
        elif [[ $n_passed -gt 0 ]]; then
            verdict="PASS" detail=""
        else
            # No reason at all: test-runner skipped every entry silently, which
            # (with TESTS and -L/-l chosen here) means they need another test
            # scenario (tests/scenarios/, e.g. noautocreate).
            verdict="SKIP" detail="${reason:-no entry ran (silently skipped: needs a non-default test scenario)}"
        fi
    fi

    printf 'verdict=%q secs=%q entries=%q detail=%q\n' "$verdict" "$secs" "$entries" "$detail" \
        >"$run_dir/$run.verdict.tmp"
    mv "$run_dir/$run.verdict.tmp" "$run_dir/$run.verdict"
}

pass=0 fail=0 skip=0
failed_allowlisted=()
failed_other=()
results="$run_dir/results.tsv"
printf 'test\tverdict\tseconds\tallowlisted\tdetail\n' >"$results"

# report_run RUN: prints RUN's line, appends it to results.tsv and counts it.
report_run() {
    local run="$1" verdict secs entries detail al
    # shellcheck disable=SC1090 # written by run_one with printf %q
    source "$run_dir/$run.verdict"
    if is_allowlisted "$run"; then al="yes"; else al="no"; fi
    case "$verdict" in
        PASS) pass=$((pass + 1)) ;;
        SKIP) skip=$((skip + 1)) ;;
        FAIL)
            fail=$((fail + 1))
            if [[ "$al" == yes ]]; then failed_allowlisted+=("$run"); else failed_other+=("$run"); fi
            ;;
    esac
    printf '%-4s  %s  %4ss  %-60s %s\n' "$verdict" "$run" "$secs" "$entries" "$detail"
    printf '%s\t%s\t%s\t%s\t%s\n' "$run" "$verdict" "$secs" "$al" "$detail" >>"$results"
}

# Report every run, in the selection's order, whose verdict and predecessors' are in
# (a run can be reported before reap_one has reaped its job).
mapfile -t runs <<<"$selected"
next_report=0
report_ready() {
    while ((next_report < ${#runs[@]})) && [[ -f "$run_dir/${runs[next_report]}.verdict" ]]; do
        report_run "${runs[next_report]}"
        next_report=$((next_report + 1))
    done
}

# reap_one waits for one of the background runs in flight (only those: the
# broker is a child too) and reports what became reportable.
reap_one() {
    local pid="" run rc
    wait -n -p pid "${!inflight[@]}"
    rc=$?
    [[ -n "$pid" ]] || return 0 # a trapped signal interrupted the wait
    run="${inflight[$pid]}"
    unset "inflight[$pid]"
    if [[ ! -f "$run_dir/$run.verdict" ]]; then
        printf 'verdict=FAIL secs=0 entries=%q detail=%q\n' "$(entries_of "${run%%@*}" "$(scope_of "${run%%@*}")")" \
            "its runner job exited (rc $rc) without a verdict" >"$run_dir/$run.verdict"
    fi
    report_ready
}
drain() { while ((${#inflight[@]} > 0)); do reap_one; done; }

for run in "${runs[@]}"; do
    if ((max_jobs == 1)) || is_serial "$run"; then
        # Alone, in the foreground (as all runs were before RDK_JOBS).
        drain
        run_one "$run"
        report_ready
    else
        while ((${#inflight[@]} >= max_jobs)); do reap_one; done
        run_one "$run" &
        inflight[$!]="$run"
    fi
done
drain
report_ready

echo
echo "librdkafka suite against $bootstrap: $pass passed, $fail failed, $skip skipped (logs: $run_dir)"
if [[ ${#failed_allowlisted[@]} -gt 0 ]]; then
    echo "allowlisted tests that FAILED: ${failed_allowlisted[*]}"
fi
if [[ ${#failed_other[@]} -gt 0 ]]; then
    echo "other tests that failed (not allowlisted): ${failed_other[*]}"
fi

if [[ ${#failed_allowlisted[@]} -gt 0 ]]; then
    exit 1
fi
if [[ "$mode" == named && ${#failed_other[@]} -gt 0 ]]; then
    exit 1
fi
exit 0
