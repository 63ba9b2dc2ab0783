"""ask — the platform's one question entry: a cited, guarded answer (``medfusion ask``, ``POST /api/ask``).

It lives among the apps, not in ``agents``, because it is a scenario like consult and MDT: it runs the
same fusion pipeline, is stored and reviewed like them, and plugs in through the same ``AppSpec``
(router, command, evaluation target, examples), so the one contract test covers it too."""

from medfusion.apps.ask import api, cli, evaluation, pages
from medfusion.apps.ask.models import AskResult
from medfusion.apps.spec import AppSpec, Example, NavLink

APP = AppSpec(
    name="ask",
    title="统一问答",
    router=api.router,
    output=AskResult,
    examples=(
        Example(
            title="痛风急性发作的治疗",
            path="/api/ask",
            body={"question": "痛风急性发作怎么治疗？"},
            subject="question",
        ),
        Example(
            title="症状鉴别（思维树）",
            path="/api/ask",
            body={"question": "发热、咳嗽、咽痛三天，可能是什么病？", "reasoning": "tot"},
            subject="question",
        ),
    ),
    cli=cli.ask,
    eval_targets=evaluation.TARGETS,
    pages=pages.router,
    # POST /api/ask needs no permission beyond signing in (a patient may name only themselves)
    nav=(NavLink(title="智能问答", path="/ask", permission=None),),
)
