"""Multi-disciplinary consultation (MDT): specialty agents in parallel, a confidence-weighted consensus,
the graph conflict check, and Markdown minutes — a draft until a clinician confirms it; a confirmed MDT
for a stored patient becomes a chart document (多学科会诊纪要)."""

import json
from pathlib import Path

from medfusion.apps.mdt import api, cli, pages
from medfusion.apps.mdt.models import MdtResult
from medfusion.apps.spec import AppSpec, Example, NavLink, WriteBack
from medfusion.store.access import Permission

_EXAMPLES = Path(__file__).with_name("examples")

APP = AppSpec(
    name="mdt",
    title="多学科会诊",
    router=api.router,
    output=MdtResult,
    examples=(
        Example(
            title="房颤合并糖尿病、慢性肾病：抗凝与拟加用布洛芬",
            path="/api/mdt",
            body={
                "bundle": json.loads((_EXAMPLES / "af_diabetes_ckd.json").read_text(encoding="utf-8")),
                "question": "抗凝方案与镇痛用药安全",
                "proposed_drugs": ["布洛芬"],
            },
            subject="question",
        ),
    ),
    cli=cli.app,
    write_back=WriteBack(title="多学科会诊纪要"),
    pages=pages.router,
    nav=(NavLink(title="MDT", path="/mdt", permission=Permission.draft_review),),
    permissions=(Permission.draft_review,),
)
