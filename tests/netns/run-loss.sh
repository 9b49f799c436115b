#!/usr/bin/env bash
# CI version of bench/loss (about 60 s): WHEP playback and the WHIP relay over a veth link
# between two network namespaces with 5 % random loss and 50 +/- 20 ms delay/jitter each way,
# RTX on; fails unless each decodes >= 95 % of its frames with no freeze over 1 s, with NACKs
# sent and packets retransmitted. Skipped (77) when not root, without `ip netns`, nftables,
# iptables' NFQUEUE or the bench programs.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec bash "$here/../../bench/loss" --quick --check "$@"
