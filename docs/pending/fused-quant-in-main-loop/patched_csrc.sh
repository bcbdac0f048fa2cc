# Sourced by the run scripts, from the project root: sets $src to a csrc/ with the fused
# kernel of background_quant_gemm.patch: the tree's own on the branch fused-quant-background,
# else a copy in /tmp with the patch applied (the tree stays as committed).
here=docs/pending/fused-quant-in-main-loop
if [ -f csrc/gemm/int8_scaled_mm_sm90_quant_a.cu ]; then
  src=csrc
else
  rm -rf /tmp/bgsrc && mkdir -p /tmp/bgsrc && cp -r csrc /tmp/bgsrc/
  (cd /tmp/bgsrc && git init -q && git apply "$OLDPWD/$here/background_quant_gemm.patch") || exit 1
  src=/tmp/bgsrc/csrc
fi
