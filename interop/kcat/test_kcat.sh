#!/usr/bin/env bash
# kcat interop suite: Debian's kcat 1.7.1, built on librdkafka 2.0.2 (an old client: it
# cannot parse default-valued tagged fields, for one), against the broker at MEDULLA_BOOTSTRAP.
#
# kcat has no topic admin at all (no create, delete or config commands), so this suite covers
# produce, consume, metadata and offset lookups only; topics are created by the broker's
# auto-creation when kcat produces to them (on by default; Medulla's default is 1 partition,
# but nothing here assumes a partition count). Topic admin is tested through the admin APIs of
# confluent-kafka, kafka-python and kafkajs in the other suites.
#
# Per codec (none, gzip, snappy, lz4, zstd), on a fresh random topic:
#   * produce 10,000 keyed records with headers (a repeated header key and an empty header
#     value included; every 1000th record a tombstone) with acks=all;
#   * kcat -L -J: the auto-created topic is in the metadata, every partition led by a listed
#     broker;
#   * kcat -C -e (assign, no group) reads them back: the multiset of (key, value, headers)
#     must equal what was produced exactly; per partition the offsets are 0..n-1 and the
#     records come in production order;
#   * kcat -Q: the offset of a record's own timestamp, of -2 (earliest) and -1 (latest), and
#     of a timestamp after the last record (-1, "none").
set -euo pipefail

: "${MEDULLA_BOOTSTRAP:?set MEDULLA_BOOTSTRAP=host:port (interop/run-all.sh does)}"
N=10000
CODECS=(none gzip snappy lz4 zstd)

command -v kcat >/dev/null || {
    echo "kcat is not installed (scripts/install-test-deps.sh installs it)" >&2
    exit 1
}

work="$(mktemp -d "${TMPDIR:-/tmp}/interop-kcat.XXXXXX")"
trap 'rm -rf "$work"' EXIT
run_id="$(od -An -tx1 -N6 /dev/urandom | tr -d ' \n')"
failures=0

fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

# kcat with the broker address and a deadline on every call (a hung client must not hang CI).
k() {
    timeout 60 kcat -b "$MEDULLA_BOOTSTRAP" "$@"
}

check_codec() {
    local codec="$1"
    local topic="interop-kcat-$codec-$run_id"
    local dir="$work/$codec"
    mkdir -p "$dir"
    echo "== kcat, codec $codec, topic $topic"

    # Input lines "key:value"; with -Z an empty value is produced as NULL (a tombstone).
    awk -v n="$N" -v codec="$codec" 'BEGIN {
        for (i = 0; i < n; i++) {
            printf "key-%05d:", i
            if (i % 1000 != 999) {
                printf "value-%05d-%s-", i, codec
                for (j = 0; j <= i % 7; j++) printf "lorem ipsum dolor sit amet "
            }
            printf "\n"
        }
    }' >"$dir/input.txt"
    # What must come back, one line per record: key, value (NULL for a tombstone), headers.
    local headers="codec=$codec,dup=first,dup=second,empty="
    awk -F: -v h="$headers" '{ v = ($2 == "" ? "NULL" : $2); printf "%s\t%s\t%s\n", $1, v, h }' \
        "$dir/input.txt" | LC_ALL=C sort >"$dir/expected.txt"

    if ! k -P -t "$topic" -K: -Z -z "$codec" \
        -H "codec=$codec" -H dup=first -H dup=second -H empty= \
        -X acks=all -X max.in.flight.requests.per.connection=1 \
        <"$dir/input.txt" 2>"$dir/produce.err"; then
        fail "$codec: kcat -P exited non-zero: $(tail -5 "$dir/produce.err")"
        return
    fi
    # Connection-level log lines can be transient; a lost record is reported like this:
    if grep -q -E 'Delivery failed|^% ERROR' "$dir/produce.err"; then
        fail "$codec: kcat -P reported errors: $(head -5 "$dir/produce.err")"
        return
    fi
    echo "  produced $N records (acks=all, max.in.flight=1), headers $headers"

    if ! k -L -t "$topic" -J >"$dir/metadata.json" 2>"$dir/metadata.err"; then
        fail "$codec: kcat -L failed: $(tail -5 "$dir/metadata.err")"
        return
    fi
    local partitions
    if ! partitions="$(python3 - "$dir/metadata.json" "$topic" <<'EOF'
import json, sys
md = json.load(open(sys.argv[1]))
brokers = {b["id"] for b in md["brokers"]}
topics = [t for t in md["topics"] if t["topic"] == sys.argv[2]]
if not brokers or len(topics) != 1 or topics[0].get("error") or not topics[0]["partitions"]:
    sys.exit(f"metadata for {sys.argv[2]} is wrong: {json.dumps(md)}")
for p in topics[0]["partitions"]:
    if p.get("error") or p["leader"] not in brokers:
        sys.exit(f"partition {p} has no valid leader (brokers {sorted(brokers)})")
print(len(topics[0]["partitions"]))
EOF
    )"; then
        fail "$codec: kcat -L -J: see above"
        return
    fi
    echo "  kcat -L: $topic auto-created with $partitions partition(s), each led by a listed broker"

    # -C without -G: a simple (assign) consumer, no group. -e: stop at the end of every partition.
    if ! k -C -t "$topic" -o beginning -e -q -Z \
        -f '%p\t%o\t%T\t%k\t%s\t%h\n' >"$dir/consumed.txt" 2>"$dir/consume.err"; then
        fail "$codec: kcat -C failed: $(tail -5 "$dir/consume.err")"
        return
    fi
    local got
    got="$(wc -l <"$dir/consumed.txt")"
    cut -f4- "$dir/consumed.txt" | LC_ALL=C sort >"$dir/actual.txt"
    if ! diff -u "$dir/expected.txt" "$dir/actual.txt" >"$dir/diff.txt"; then
        fail "$codec: consumed $got records, not identical to the $N produced; first differences (- produced, + consumed):"
        grep -E '^[-+][^-+]' "$dir/diff.txt" | head -20 >&2
        return
    fi
    # Per partition: offsets 0, 1, 2, ... in delivery order and record numbers increasing.
    if ! awk -F'\t' '{
            p = $1; o = $2; i = substr($4, 5) + 0
            if (!(p in next_offset)) next_offset[p] = 0
            if (o != next_offset[p]) { printf "partition %s: offset %s where %s was expected\n", p, o, next_offset[p]; bad = 1; exit }
            if (p in last && i <= last[p]) { printf "partition %s offset %s: record %s after record %s (production order lost)\n", p, o, i, last[p]; bad = 1; exit }
            next_offset[p] = o + 1; last[p] = i
        } END { exit bad }' "$dir/consumed.txt" >&2; then
        fail "$codec: per-partition offsets or order wrong (above)"
        return
    fi
    echo "  kcat -C: all $got records identical (key, value, tombstones, headers incl. repeated key), offsets 0..n-1 per partition in production order"

    # kcat -Q: offsets for timestamps. Take the middle record of the first partition listed;
    # the answer for its timestamp is the lowest offset in the partition with a timestamp >= it.
    local p count mid_ts want_ts want_end answer
    p="$(head -1 "$dir/consumed.txt" | cut -f1)"
    count="$(awk -F'\t' -v p="$p" '$1 == p' "$dir/consumed.txt" | wc -l)"
    mid_ts="$(awk -F'\t' -v p="$p" -v m="$((count / 2))" '$1 == p && $2 == m { print $3 }' "$dir/consumed.txt")"
    want_ts="$(awk -F'\t' -v p="$p" -v t="$mid_ts" '$1 == p && $3 >= t && (best == "" || $2 < best) { best = $2 } END { print best }' "$dir/consumed.txt")"
    local max_ts
    # %.0f, not %d: mawk's %d caps at 2^31-1, and these are millisecond timestamps.
    max_ts="$(awk -F'\t' 'BEGIN { m = 0 } $3 > m { m = $3 } END { printf "%.0f", m }' "$dir/consumed.txt")"
    want_end=-1
    local query want
    for query in "$mid_ts:$want_ts" "-2:0" "-1:$count" "$((max_ts + 100000)):$want_end"; do
        want="${query##*:}"
        if ! answer="$(k -Q -t "$topic:$p:${query%:*}" 2>"$dir/query.err")"; then
            fail "$codec: kcat -Q -t $topic:$p:${query%:*} failed: $(tail -3 "$dir/query.err")"
            return
        fi
        # Output: "<topic> [<partition>] offset <offset>"
        if [[ "$answer" != "$topic [$p] offset $want" ]]; then
            fail "$codec: kcat -Q -t $topic:$p:${query%:*}: got '$answer', expected offset $want"
            return
        fi
    done
    echo "  kcat -Q partition $p: timestamp of offset $((count / 2)) -> $want_ts, -2 -> 0, -1 -> $count, after the last record -> -1"
}

for codec in "${CODECS[@]}"; do
    check_codec "$codec"
done

# Metadata for all topics: every topic this run created is listed.
if k -L -J >"$work/all.json" 2>"$work/all.err"; then
    if python3 - "$work/all.json" "$run_id" "${#CODECS[@]}" <<'EOF'; then
import json, sys
md = json.load(open(sys.argv[1]))
mine = [t["topic"] for t in md["topics"] if t["topic"].endswith(sys.argv[2])]
if len(mine) != int(sys.argv[3]):
    sys.exit(f"kcat -L lists {len(mine)} of this run's {sys.argv[3]} topics: {mine}")
print(f"  kcat -L (all topics): {len(md['topics'])} topics incl. this run's {len(mine)}, {len(md['brokers'])} broker(s)")
EOF
        :
    else
        fail "kcat -L (all topics): see above"
    fi
else
    fail "kcat -L failed: $(tail -5 "$work/all.err")"
fi

passed=$((${#CODECS[@]} + 1 - failures))
echo "kcat: $passed passed, $failures failed"
((failures == 0))
