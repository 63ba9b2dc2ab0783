"""Laboratory tests and vital signs the generator draws, with adult reference intervals.

Sources: WS/T 404.1-2012 (ALT), WS/T 404.3-2012 (K), WS/T 404.5-2015 (creatinine, enzymatic;
20–59 y and 60–79 y intervals), WS/T 405-2012 (blood count),
《中国成人血脂异常防治指南（2016年修订版）》 (lipid cut-offs),
《中国2型糖尿病防治指南（2020年版）》 (fasting glucose, HbA1c),
《中国高血压防治指南（2018年修订版）》 (140/90),
WS/T 428-2013 (BMI 18.5–23.9). eGFR by CKD-EPI 2009 (Levey et al., Ann Intern Med 2009;150:604–612).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class LabTest:
    key: str
    name: str
    loinc: str
    unit: str
    low: float | None
    high: float | None
    normal: tuple[float, float]  # where healthy people's values are drawn from
    decimals: int = 1
    category: str = "laboratory"


LABS: dict[str, LabTest] = {
    t.key: t
    for t in (
        LabTest("GLU", "空腹血糖", "1558-6", "mmol/L", 3.9, 6.1, (4.3, 5.8), 1),
        LabTest("HBA1C", "糖化血红蛋白", "4548-4", "%", 4.0, 6.0, (4.6, 5.8), 1),
        LabTest("TC", "总胆固醇", "2093-3", "mmol/L", None, 5.2, (3.6, 5.0), 2),
        LabTest("TG", "甘油三酯", "2571-8", "mmol/L", None, 1.7, (0.6, 1.6), 2),
        LabTest("LDL", "低密度脂蛋白胆固醇", "2089-1", "mmol/L", None, 3.4, (1.9, 3.2), 2),
        LabTest("HDL", "高密度脂蛋白胆固醇", "2085-9", "mmol/L", 1.0, None, (1.05, 1.8), 2),
        LabTest("ALT", "丙氨酸氨基转移酶", "1742-6", "U/L", 9, 50, (12, 40), 0),
        LabTest("HGB", "血红蛋白", "718-7", "g/L", 130, 175, (132, 165), 0),
        LabTest("WBC", "白细胞计数", "6690-2", "×10^9/L", 3.5, 9.5, (4.0, 8.5), 2),
        LabTest("PLT", "血小板计数", "777-3", "×10^9/L", 125, 350, (150, 320), 0),
        LabTest("K", "血钾", "2823-3", "mmol/L", 3.5, 5.3, (3.7, 5.0), 2),
        LabTest("CREA", "肌酐", "14682-9", "μmol/L", 57, 97, (60, 95), 0),
        LabTest("EGFR", "估算肾小球滤过率(CKD-EPI)", "62238-1", "mL/min/1.73m²", 90, None, (90, 120), 0),
    )
}

# Sex- and age-specific intervals where the standards give them (WS/T 404.1/404.5, WS/T 405).
FEMALE_RANGES = {"ALT": (7.0, 40.0), "HGB": (115.0, 150.0), "CREA": (41.0, 73.0)}
OLDER_CREATININE = {"male": (57.0, 111.0), "female": (41.0, 81.0)}  # 60–79 years


def reference_range(key: str, sex: str, age: int) -> tuple[float | None, float | None]:
    test = LABS[key]
    if key == "CREA" and age >= 60:
        return OLDER_CREATININE[sex]
    if sex == "female" and key in FEMALE_RANGES:
        return FEMALE_RANGES[key]
    return test.low, test.high


VITALS: dict[str, LabTest] = {
    t.key: t
    for t in (
        LabTest("SBP", "收缩压", "8480-6", "mmHg", 90, 139, (105, 134), 0, "vital-signs"),
        LabTest("DBP", "舒张压", "8462-4", "mmHg", 60, 89, (62, 84), 0, "vital-signs"),
        LabTest("HR", "心率", "8867-4", "次/分", 60, 100, (62, 92), 0, "vital-signs"),
        LabTest("TEMP", "体温", "8310-5", "℃", 36.0, 37.3, (36.2, 37.0), 1, "vital-signs"),
        LabTest("RR", "呼吸频率", "9279-1", "次/分", 12, 20, (14, 19), 0, "vital-signs"),
        LabTest("SPO2", "血氧饱和度", "59408-5", "%", 95, 100, (96, 99), 0, "vital-signs"),
        LabTest("HEIGHT", "身高", "8302-2", "cm", None, None, (150, 180), 0, "vital-signs"),
        LabTest("WEIGHT", "体重", "29463-7", "kg", None, None, (45, 85), 1, "vital-signs"),
        LabTest("BMI", "体重指数", "39156-5", "kg/m²", 18.5, 23.9, (19, 26), 1, "vital-signs"),
    )
}


def ckd_epi_2009(creatinine_umol: float, age: int, sex: str) -> float:
    """eGFR (mL/min/1.73 m²) by the CKD-EPI 2009 creatinine equation, without the race term."""
    scr = creatinine_umol / 88.4
    kappa, alpha = (0.7, -0.329) if sex == "female" else (0.9, -0.411)
    egfr = 141 * min(scr / kappa, 1) ** alpha * max(scr / kappa, 1) ** -1.209 * 0.993**age
    return float(egfr * (1.018 if sex == "female" else 1.0))


def creatinine_for_egfr(egfr: float, age: int, sex: str) -> float:
    """The creatinine (μmol/L) that gives ``egfr`` when above κ — inverts :func:`ckd_epi_2009`."""
    kappa = 0.7 if sex == "female" else 0.9
    sex_factor = 1.018 if sex == "female" else 1.0
    ratio = (egfr / (141 * 0.993**age * sex_factor)) ** (-1 / 1.209)
    return float(max(ratio, 1.0) * kappa * 88.4)


def round_to(value: float, decimals: int) -> float:
    factor = 10**decimals
    return float(math.floor(value * factor + 0.5) / factor)
