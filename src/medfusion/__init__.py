"""MedFusion 通专融合医疗AI平台: general–specialist fusion for hospitals."""

__version__ = "0.1.0"
