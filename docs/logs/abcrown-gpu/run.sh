#!/bin/bash
# α,β-CROWN on CUDA: mnist-net_256x2 baseline + grafted, run from the carried checkout.
G=$PWD/.gpu
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 3
export PYTHONPATH=/tmp/site:$G/auto_LiRPA:$G/deps PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > $OUT/gpu.txt 2>&1
python3 -c "import torch,sys;print(sys.version);print('torch',torch.__version__,'cuda',torch.cuda.is_available(),torch.cuda.get_device_name(0))" >> $OUT/gpu.txt 2>&1
cd $G/complete_verifier
run() {  # model vnnlib tag
  local tag=$3
  sed "s#CEXPATH#$OUT/$tag.cex.txt#" $G/cfg_template.yaml > $OUT/$tag.yaml
  local t0=$(date +%s.%N)
  timeout -k 5 75 python3 abcrown.py --config $OUT/$tag.yaml --onnx_path $G/bench/onnx/$1 --vnnlib_path $G/bench/vnnlib/$2 \
     --results_file $OUT/$tag.results.txt --timeout 30 > $OUT/$tag.log 2>&1
  local rc=$?
  local t1=$(date +%s.%N)
  echo "$tag,$1,$2,rc=$rc,wall=$(python3 -c "print(round($t1-$t0,2))"),result=$(head -1 $OUT/$tag.results.txt 2>/dev/null)" | tee -a $OUT/summary.csv
}
B=mnist-net_256x2.onnx; F=mnist-net_256x2_grafted.onnx
run $B img0_eps0.005.vnnlib base_img0_eps0.005
run $B img0_eps0.1.vnnlib base_img0_eps0.1
run $B prop_0_0.03.vnnlib base_prop_0_0.03
run $B prop_1_0.03.vnnlib base_prop_1_0.03
run $B prop_0_0.05.vnnlib base_prop_0_0.05
run $F prop_0_0.03.vnnlib graft_prop_0_0.03
run $F prop_1_0.03.vnnlib graft_prop_1_0.03
