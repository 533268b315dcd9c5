#!/usr/bin/env bash
# Packs bench/gpu-suite.ts for the GPU machine of this workplace (the shared gpu-pack tool), then
# xz-compresses Dawn's dawn.node (21 MB → 5 MB) so that the repo plus .gpu stays under the 64 MiB
# the device tool carries; run.sh decompresses it on the machine before starting Node.
set -euo pipefail
cd "$(dirname "$0")/.."
pnpm exec turbo run build --filter='bench^...' --output-logs=errors-only >/dev/null
rm -f .gpu/app.mjs
../shared/tools/gpu-pack bench/gpu-suite.ts
dawn=.gpu/node_modules/webgpu/dist/linux-x64/dawn.node
[ -f "$dawn" ] && xz -T2 -6 -f "$dawn"
grep -q 'dawn.node.xz\|linux-x64/\*.xz' .gpu/run.sh || sed -i 's|^for f in "\$d"/debs/\*.deb; do dpkg -x "\$f" /; done; ldconfig|&\nfor f in "$d"/node_modules/webgpu/dist/linux-x64/*.xz; do if [ -f "$f" ]; then xz -d -f "$f"; fi; done|' .gpu/run.sh
# the debs once per machine (parallel runs, e.g. bench/h200-quality.sh, would race in dpkg -x)
sed -i 's|^for f in "\$d"/debs/\*.deb; do dpkg -x "\$f" /; done; ldconfig$|[ -f /tmp/.gpu-debs-done ] \|\| { for f in "$d"/debs/*.deb; do dpkg -x "$f" /; done; ldconfig; touch /tmp/.gpu-debs-done; }|' .gpu/run.sh
du -sh .gpu
