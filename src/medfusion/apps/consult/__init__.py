"""口袋主任医师 — the pocket chief physician: differential diagnosis, checks, treatment and drug ideas."""

from medfusion.apps.consult import api, cli, evaluation, pages
from medfusion.apps.consult.models import ConsultResult
from medfusion.apps.spec import AppSpec, Example, NavLink
from medfusion.store.access import Permission

APP = AppSpec(
    name="consult",
    title="口袋主任医师",
    router=api.router,
    output=ConsultResult,
    examples=(
        Example(
            title="儿童发热咳嗽气促",
            path="/api/consult",
            body={"case": "3岁男孩，发热2天，咳嗽，气促，无皮疹，无腹泻", "level": "junior"},
            subject="case",
        ),
        Example(
            title="成人胸痛",
            path="/api/consult",
            body={"case": "58岁男性，胸痛2小时，伴大汗、气促，无发热", "level": "attending"},
            subject="case",
        ),
    ),
    cli=cli.consult,
    eval_targets=evaluation.TARGETS,
    pages=pages.router,
    nav=(NavLink(title="会诊", path="/consult", permission=Permission.draft_review),),
    permissions=(Permission.draft_review,),
)
