#!/usr/bin/env bash
# Prepares what tools/gpu_session.sh needs on a lent GPU machine, which has torch but none of this
# project's other packages and no network: wheels of those packages in .whl/ (for the machine's CPython
# 3.12, the versions installed in .venv here) and the pymskt label map in .devdata/. Both folders are
# added to .git/info/exclude; name them in the device call's `carry`. Run from the repository root.
set -eu
PY=.venv/bin/python
PACKAGES="annotated-types nibabel pydantic pydantic_core pydantic-settings pydicom pyjpegls pynrrd python-dotenv
segment-anything structlog typing-inspection typing_extensions"
LABEL_MAP=../shared/data/pymskt-knee/SAG_3D_DESS_RIGHT_bones_cart_men_fib-label.nrrd

mkdir -p .git/info .whl .devdata
for folder in /.whl/ /.devdata/; do
    grep -qxF "$folder" .git/info/exclude 2>/dev/null || echo "$folder" >> .git/info/exclude
done
for package in $PACKAGES; do
    version=$($PY -m pip show "$package" 2>/dev/null | sed -n 's/^Version: //p')
    [ -n "$version" ] || { echo "$package is not installed in .venv: run make install" >&2; exit 1; }
    $PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d .whl "$package==$version"
done
cp "$LABEL_MAP" .devdata/
echo "ready: $(ls .whl | wc -l) wheels in .whl/, $(du -sh .whl | cut -f1); label map in .devdata/"
echo "device call: command 'bash tools/gpu_session.sh', carry ['.whl', '.devdata'], timeout_s 595"
