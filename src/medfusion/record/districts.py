"""Shanghai's 16 districts: GB/T 2260 administrative codes (the first six digits of a 身份证号), postal
codes, and real roads, so addresses and ID numbers agree. About a third of Shanghai's residents were born
elsewhere (7th national census, 2020: 10.48 million of 24.87 million are migrants), so some ID numbers
carry other provinces' codes.

Reference data, shared by synthetic residents (``medfusion.synth.geography`` picks from it) and by
pseudonymisation (surrogate addresses and ID numbers in ``medfusion.privacy``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class District:
    name: str
    code: str
    postal_code: str
    roads: tuple[str, ...]
    weight: int  # residents, ten-thousands (7th census, rounded)
    since: int = 0  # year the district code came into use (GB/T 2260 editions)
    predecessor: str = ""  # the county code numbers were issued under before that

    def code_at(self, year: int) -> str:
        """The address code a number issued in ``year`` carries (codes never change once issued)."""
        return self.predecessor if year < self.since and self.predecessor else self.code


# fmt: off
DISTRICTS: tuple[District, ...] = (
    District("黄浦区", "310101", "200001", ("南京东路", "淮海中路", "西藏南路", "复兴中路", "河南南路"), 66),
    District("徐汇区", "310104", "200030", ("漕溪北路", "天钥桥路", "衡山路", "龙华中路", "宜山路"), 111),
    District("长宁区", "310105", "200050", ("延安西路", "天山路", "仙霞路", "中山公园路", "虹桥路"), 69),
    District("静安区", "310106", "200040", ("南京西路", "共和新路", "延长中路", "大宁路", "江宁路"), 98),
    District("普陀区", "310107", "200333", ("真北路", "武宁路", "曹杨路", "长寿路", "中山北路"), 124),
    District("虹口区", "310109", "200080", ("四川北路", "曲阳路", "大连西路", "溧阳路", "广粤路"), 76),
    District("杨浦区", "310110", "200082", ("控江路", "四平路", "黄兴路", "国定路", "平凉路"), 124),
    District("闵行区", "310112", "201100", ("莘庄路", "七莘路", "虹井路", "都市路", "沪闵路"), 265, 1981, "310221"),
    District("宝山区", "310113", "201900", ("牡丹江路", "友谊路", "共康路", "殷高西路", "泰和路"), 223, 1988, "310223"),
    District("嘉定区", "310114", "201800", ("城中路", "博乐路", "塔城路", "叶城路", "沪宜公路"), 183, 1992, "310222"),
    District("浦东新区", "310115", "200120", ("世纪大道", "张杨路", "浦东南路", "东方路", "锦绣路"), 568, 1992, "310224"),
    District("金山区", "310116", "201500", ("卫零路", "石化大道", "龙山路", "蒙山路", "朱泾路"), 82, 1997, "310228"),
    District("松江区", "310117", "201600", ("中山中路", "荣乐路", "人民北路", "乐都路", "西林北路"), 191, 1998, "310227"),
    District("青浦区", "310118", "201700", ("公园路", "城中北路", "外青松公路", "华青路", "盈港路"), 127, 1999, "310229"),
    District("奉贤区", "310120", "201400", ("南桥路", "解放路", "环城东路", "望园路", "百齐路"), 114, 2001, "310226"),
    District("崇明区", "310151", "202150", ("八一路", "人民路", "东门路", "江山路", "堡镇路"), 64, 2016, "310230"),
)

# Migrants' birthplaces (GB/T 2260 prefecture-level codes: Jiangsu, Zhejiang, Anhui, Henan, Sichuan, Jiangxi)
# with the year each code came into use — a number issued earlier cannot carry it.
MIGRANT_REGIONS: tuple[tuple[str, int, int], ...] = (
    ("320100", 5, 0), ("320500", 6, 0), ("320600", 4, 0), ("321000", 3, 1983), ("321200", 2, 1996),
    ("330100", 4, 0), ("330200", 4, 0), ("330400", 3, 1983), ("340100", 5, 0), ("341200", 4, 1996),
    ("341600", 3, 2000), ("410100", 3, 0), ("411500", 3, 1998), ("510100", 3, 0), ("360100", 2, 0),
)
# fmt: on
# Numbers were first issued from 1984; anyone born earlier got theirs then, under that year's codes.
FIRST_ISSUE_YEAR = 1984
