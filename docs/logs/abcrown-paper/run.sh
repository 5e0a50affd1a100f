#!/bin/bash
# α,β-CROWN on CUDA: the MNIST CNN (cnn-eps0.1) baseline vs its 50 % grafted + finetuned version,
# the same 10 instances (first 10 of the paper benchmark's seeded ERAN order), BaB timeout 20 s.
# Carried folder out/abc: complete_verifier + auto_LiRPA + onnx2pytorch (the checkout docs/abcrown-gpu.md
# describes), wheels of the Python deps (gurobipy replaced by gurobipy_stub.py here: the 64 MiB carry limit), and B (graftonnx export of baseline.onnx + combined50.onnx, seed 0, first 10 ERAN images).
A=$PWD/out/abc
B=$PWD/docs/logs/abcrown-paper/bench  # the two models + 10 properties, carried untracked, not committed
W="$A/whl/*.whl"  # onnx/onnxruntime from whlopt/ only where the machine lacks them
python3 -c "import onnx, onnxruntime" 2>/dev/null || W="$W $A/whlopt/*.whl"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site $W \
  > $OUT/pip.log 2>&1 || echo "pip failed rc=$?" >> $OUT/pip.log
export PYTHONPATH=/tmp/site:$A/auto_LiRPA:$A/deps PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > $OUT/gpu.txt 2>&1
python3 -c "import torch,sys;print(sys.version);print('torch',torch.__version__,'cuda',torch.cuda.is_available(),torch.cuda.get_device_name(0))" >> $OUT/gpu.txt 2>&1
for m in sklearn onnxruntime onnx scipy onnxoptimizer skl2onnx appdirs yaml; do
  python3 -c "import $m" >/dev/null 2>&1 && echo "$m ok" || echo "$m MISSING"; done >> $OUT/gpu.txt
cd $A/complete_verifier
one() {  # model vnnlib
  local m=$1 v=$2 tag="${1%.onnx}_$(basename ${2%.vnnlib})"
  printf 'general:\n  device: %s\n  conv_mode: matrix\n  sparse_interm: false\n  save_adv_example: true\n  complete_verifier: bab\nmodel:\n  input_shape: [-1, 1, 28, 28]\nattack:\n  cex_path: %s\nbab:\n  timeout: 20\n' "${DEVICE:-cuda}" "$OUT/$tag.cex.txt" > $OUT/$tag.yaml
  local t0=$(date +%s.%N)
  timeout -k 5 45 python3 abcrown.py --config $OUT/$tag.yaml --onnx_path $B/onnx/$m --vnnlib_path $B/$v \
     --results_file $OUT/$tag.results.txt --timeout 20 > $OUT/$tag.log 2>&1
  local rc=$? t1=$(date +%s.%N)
  echo "${m%.onnx},$(basename $v),rc=$rc,wall=$(python3 -c "print(round($t1-$t0,2))"),result=$(head -1 $OUT/$tag.results.txt 2>/dev/null)"
}
export -f one; export A B OUT DEVICE
for m in baseline.onnx combined50.onnx; do for v in $(awk -F, '!s[$2]++{print $2}' $B/instances.csv | head -${N:-10}); do
  echo "$m $v"; done; done | xargs -P 5 -L 1 bash -c 'one "$0" "$1"' | sort > $OUT/summary.csv
cat $OUT/summary.csv
