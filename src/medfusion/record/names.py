"""Chinese personal names as reference data: surnames with their frequencies, given names by era and sex.

Synthetic residents draw from them (``medfusion.synth.names``) and pseudonymisation draws surrogate names
from them (``medfusion.privacy.pseudonyms``), so they live here, below both.

Surname weights approximate the 2020 national surname ranking published by the Ministry of Public Security
(《二〇二〇年全国姓名报告》: 王 李 张 刘 陈 lead, together ~30%), nudged toward the surnames common in Shanghai
(陆 沈 顾 朱 徐 钱). Given-name characters are split by era and sex so an 80-year-old
is 秀英 or 建国 and a 20-year-old is 子涵 or 浩宇 — a name shape clinical NLP must handle either way.
"""

from __future__ import annotations

# fmt: off
SURNAMES: tuple[tuple[str, int], ...] = (
    ("王", 70), ("李", 68), ("张", 66), ("刘", 52), ("陈", 62), ("杨", 36), ("黄", 25), ("赵", 22), ("吴", 26),
    ("周", 24), ("徐", 24), ("孙", 16), ("马", 13), ("朱", 20), ("胡", 15), ("郭", 12), ("何", 11), ("林", 11),
    ("高", 10), ("罗", 9), ("郑", 9), ("梁", 8), ("谢", 8), ("宋", 7), ("唐", 7), ("许", 7), ("韩", 6), ("冯", 6),
    ("邓", 6), ("曹", 6), ("彭", 5), ("曾", 5), ("肖", 5), ("田", 5), ("董", 5), ("潘", 5), ("袁", 5), ("蔡", 5),
    ("蒋", 6), ("余", 4), ("于", 4), ("杜", 4), ("叶", 5), ("程", 4), ("魏", 4), ("苏", 4), ("吕", 4), ("丁", 4),
    ("沈", 9), ("陆", 9), ("顾", 8), ("钱", 6), ("姚", 4), ("汪", 4), ("金", 4), ("范", 4), ("施", 4), ("戴", 3),
    ("严", 3), ("龚", 3), ("邵", 3), ("倪", 3), ("俞", 3), ("毛", 3), ("夏", 3), ("方", 3), ("任", 3), ("卢", 3),
    ("欧阳", 1), ("司马", 1), ("诸葛", 1), ("上官", 1),
)
# fmt: on

# fmt: off
MALE_OLD = "建国 国强 建华 志明 德明 国庆 卫东 建军 国华 永强 伟民 根宝 福生 金龙 宝山 志强 振华 家明 荣生 文彬".split()  # noqa: SIM905
FEMALE_OLD = "秀英 桂兰 玉兰 秀兰 凤英 美华 丽华 秀珍 桂英 玉珍 月娥 金妹 雅芳 琴 芳 萍 红 敏 静 丽".split()  # noqa: SIM905
MALE_MID = "伟 强 磊 军 勇 杰 涛 斌 超 明 刚 平 辉 鹏 华 飞 鑫 波 俊 峰 晓东 志刚 海峰 建平 文军".split()  # noqa: SIM905
FEMALE_MID = "丽 娟 艳 芳 敏 静 燕 霞 玲 婷 雪 颖 慧 佳 晓燕 丽娟 海燕 春梅 晓红 文静 美玲".split()  # noqa: SIM905
MALE_YOUNG = "浩宇 子轩 宇航 浩然 俊杰 子豪 皓轩 博文 宇轩 铭泽 梓睿 一鸣 天佑 晨阳 思远 嘉懿 奕辰 沐宸".split()  # noqa: SIM905
FEMALE_YOUNG = "子涵 欣怡 梓涵 诗涵 雨涵 可欣 梦瑶 思彤 语嫣 一诺 若汐 安琪 佳怡 欣妍 雨桐 梓萱 芷若 语桐".split()  # noqa: SIM905
# fmt: on

# given names of people born 1960–1994, for surrogate names elsewhere (privacy)
MIDDLE_ERA_GIVEN = (*MALE_MID, *FEMALE_MID)
