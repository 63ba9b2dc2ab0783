"""Chronic conditions with age-specific prevalence, their labs, vitals and usual medicines.

Prevalence by age band (upper age bound → probability), rounded from:
- hypertension: China Hypertension Survey 2012–2015 (Wang Z et al., Circulation 2018;137:2344–2356);
- type 2 diabetes: 2017 national survey, ADA criteria (Li Y et al., BMJ 2020;369:m997);
- dyslipidaemia: 《中国血脂管理指南（2023年）》 (adult prevalence 35.6%);
- CKD stage 3+ (eGFR < 60): Zhang L et al., Lancet 2012;379:815–822 (eGFR < 60 in 1.7% overall, rising
  steeply with age);
- COPD: China Pulmonary Health study (Wang C et al., Lancet 2018;391:1706–1717; 8.6% of adults ≥ 20,
  men ≈ 2× women);
- coronary heart disease and stroke history: 《中国心血管健康与疾病报告2022》.
Codes are ICD-10 国家临床版2.0; drugs carry WHO ATC codes and doses from their Chinese labels.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Drug:
    name: str
    atc: str
    dose: float
    unit: str
    route: str
    frequency: str


@dataclass(frozen=True)
class ChronicCondition:
    key: str
    icd10: str
    name: str
    department: str
    prevalence: tuple[tuple[int, float], ...]  # (age upper bound exclusive, probability)
    male_factor: float = 1.0
    drugs: tuple[Drug, ...] = ()
    labs: dict[str, tuple[float, float]] = field(default_factory=dict)  # lab key → range when diseased
    onset_years: tuple[int, int] = (1, 15)

    def probability(self, age: int, sex: str) -> float:
        for upper, p in self.prevalence:
            if age < upper:
                factor = self.male_factor if sex == "male" else 2 - self.male_factor
                return min(p * factor, 0.95)
        return 0.0


_NO_UPPER = 200
CONDITIONS: tuple[ChronicCondition, ...] = (
    ChronicCondition(
        "htn",
        "I10.x00x002",
        "高血压",
        "心血管内科",
        ((35, 0.05), (45, 0.14), (55, 0.29), (65, 0.44), (75, 0.55), (_NO_UPPER, 0.60)),
        1.1,
        (
            Drug("苯磺酸氨氯地平片", "C08CA01", 5, "mg", "口服", "QD"),
            Drug("缬沙坦胶囊", "C09CA03", 80, "mg", "口服", "QD"),
            Drug("硝苯地平控释片", "C08CA05", 30, "mg", "口服", "QD"),
            Drug("厄贝沙坦片", "C09CA04", 150, "mg", "口服", "QD"),
        ),
    ),
    ChronicCondition(
        "t2dm",
        "E11.900",
        "2型糖尿病",
        "内分泌科",
        ((30, 0.02), (40, 0.06), (50, 0.10), (60, 0.16), (70, 0.22), (_NO_UPPER, 0.24)),
        1.1,
        (
            Drug("盐酸二甲双胍片", "A10BA02", 500, "mg", "口服", "TID"),
            Drug("阿卡波糖片", "A10BF01", 50, "mg", "口服", "TID"),
            Drug("格列美脲片", "A10BB12", 2, "mg", "口服", "QD"),
            Drug("达格列净片", "A10BK01", 10, "mg", "口服", "QD"),
        ),
        {"GLU": (7.2, 12.5), "HBA1C": (6.8, 10.5)},
    ),
    ChronicCondition(
        "lipid",
        "E78.500",
        "高脂血症",
        "心血管内科",
        ((30, 0.20), (45, 0.33), (60, 0.40), (_NO_UPPER, 0.42)),
        1.15,
        (
            Drug("阿托伐他汀钙片", "C10AA05", 20, "mg", "口服", "QN"),
            Drug("瑞舒伐他汀钙片", "C10AA07", 10, "mg", "口服", "QN"),
        ),
        {"TC": (5.4, 7.2), "LDL": (3.5, 5.0), "TG": (1.8, 3.8)},
    ),
    ChronicCondition(
        "ckd",
        "N18.300",
        "慢性肾脏病3期",
        "肾脏内科",
        ((40, 0.005), (60, 0.02), (70, 0.06), (80, 0.12), (_NO_UPPER, 0.20)),
        1.0,
        (
            Drug("缬沙坦胶囊", "C09CA03", 80, "mg", "口服", "QD"),
            Drug("碳酸氢钠片", "A02AH", 0.5, "g", "口服", "TID"),
        ),
        {"EGFR": (30, 59)},
    ),
    ChronicCondition(
        "copd",
        "J44.900",
        "慢性阻塞性肺疾病",
        "呼吸与危重症医学科",
        ((40, 0.02), (50, 0.05), (60, 0.12), (70, 0.21), (_NO_UPPER, 0.33)),
        1.4,
        (
            Drug("噻托溴铵粉吸入剂", "R03BB04", 18, "μg", "吸入", "QD"),
            Drug("沙美特罗替卡松粉吸入剂", "R03AK06", 1, "喷", "吸入", "BID"),
        ),
    ),
    ChronicCondition(
        "chd",
        "I25.103",
        "冠状动脉粥样硬化性心脏病",
        "心血管内科",
        ((45, 0.002), (60, 0.015), (70, 0.05), (80, 0.09), (_NO_UPPER, 0.12)),
        1.3,
        (
            Drug("阿司匹林肠溶片", "B01AC06", 100, "mg", "口服", "QD"),
            Drug("单硝酸异山梨酯缓释片", "C01DA14", 40, "mg", "口服", "QD"),
        ),
    ),
    ChronicCondition(
        "stroke",
        "I69.300x002",
        "陈旧性脑梗死",
        "神经内科",
        ((45, 0.001), (60, 0.01), (70, 0.03), (80, 0.05), (_NO_UPPER, 0.07)),
        1.3,
        (Drug("硫酸氢氯吡格雷片", "B01AC04", 75, "mg", "口服", "QD"),),
    ),
)
BY_KEY = {c.key: c for c in CONDITIONS}

ACUTE_COMPLAINTS: tuple[tuple[str, str, str, str], ...] = (
    # (ICD-10, name, department, chief complaint)
    ("J06.900", "急性上呼吸道感染", "全科医学科", "咽痛、流涕"),
    ("J20.900", "急性支气管炎", "呼吸与危重症医学科", "咳嗽、咳痰"),
    ("K52.901", "非感染性胃肠炎", "消化内科", "腹泻"),
    ("R51.x00", "头痛", "神经内科", "头痛"),
)
CHECKUP = ("Z00.001", "健康查体", "全科医学科")

ALLERGENS: tuple[tuple[str, str, str], ...] = (
    ("青霉素", "medication", "皮疹"),
    ("头孢类抗生素", "medication", "荨麻疹"),
    ("磺胺类药物", "medication", "皮疹伴瘙痒"),
    ("碘造影剂", "medication", "恶心、皮疹"),
    ("海鲜", "food", "荨麻疹"),
)
