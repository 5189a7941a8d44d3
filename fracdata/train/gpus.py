"""Dense bf16 tensor peaks per GPU, told apart by name and memory: the denominator of every MFU.

NVIDIA's datasheets give bf16 tensor TFLOPS "with sparsity"; the dense peak is half:
  H100 SXM5 80 GB (HBM3)      1,979 / 2 = 989.4     H200 SXM 141 GB   1,979 / 2 = 989.4
  H100 NVL 94 GB (HBM3)       1,671 / 2 = 835.5     H200 NVL 141 GB   1,671 / 2 = 835.5
  H100 PCIe 80 GB (HBM2e)     1,513 / 2 = 756.5     A100 (SXM, PCIe)  312 (dense)
  L40S                        362.05 (the datasheet's dense figure)
An "H100" is three cards: giving a PCIe card the SXM peak understates its MFU by 989.4 / 756.5 =
1.31x. torch names them "NVIDIA H100 80GB HBM3" (SXM), "NVIDIA H100 PCIe" and "NVIDIA H100 NVL";
an NVL card also shows ~94 GiB (100 GB) where the others show ~80 GiB (85 GB).
"""

from __future__ import annotations

PEAK_BF16_TFLOPS = {"H100 SXM": 989.4, "H100 NVL": 835.5, "H100 PCIe": 756.5, "H200 SXM": 989.4, "H200 NVL": 835.5,
                    "A100": 312.0, "L40S": 362.05}
NVL_MEMORY_GB = 90.0  # an H100 NVL holds 94 GiB = 100.9 GB; SXM and PCIe 80 GiB = 85.9 GB


def card(name: str | None, memory_gb: float | None = None) -> tuple[str | None, str]:
    """(key of PEAK_BF16_TFLOPS or None, how it was decided) from a device name and/or its memory (GB)."""
    n = (name or "").upper().replace("-", " ")
    if "H200" in n:
        return ("H200 NVL", f"{name}: NVL in the name") if "NVL" in n else ("H200 SXM", f"{name}")
    if "H100" in n:
        if "NVL" in n or (memory_gb or 0) > NVL_MEMORY_GB:
            return "H100 NVL", f"{name}: NVL" + (" in the name" if "NVL" in n else f" by its {memory_gb:.0f} GB")
        if "PCIE" in n:
            return "H100 PCIe", f"{name}: PCIe in the name"
        if "HBM3" in n or "SXM" in n:
            return "H100 SXM", f"{name}: {'HBM3' if 'HBM3' in n else 'SXM'} in the name"
        return None, f"{name}: an H100 of unknown form (SXM 989.4, NVL 835.5, PCIe 756.5 TFLOPS)"
    for key in ("A100", "L40S"):
        if key in n:
            return key, f"{name}"
    if name:
        return None, f"{name}: no peak known for this card"
    if memory_gb is not None and 135 <= memory_gb <= 150:  # 141 GB: only the H200 (SXM or NVL)
        return "H200 SXM", f"{memory_gb:g} GB, no name: assumed SXM; an H200 NVL peaks at 835.5"
    if memory_gb is not None and 75 <= memory_gb <= 90:
        return "H100 SXM", f"{memory_gb:g} GB, no name: assumed SXM; an H100 PCIe peaks at 756.5, an A100 at 312"
    return None, "card unknown (no name, memory not one of 80 or 141 GB)"


def peak_tflops(name: str | None, memory_gb: float | None = None) -> tuple[float | None, str]:
    """(dense bf16 TFLOPS or None, the card as decided)."""
    key, how = card(name, memory_gb)
    return (PEAK_BF16_TFLOPS[key] if key else None), (f"{key} ({how})" if key else how)
