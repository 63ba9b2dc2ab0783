"""Suites: which datasets a suite runs, which dimension it grades, and the modules it needs. A suite whose
module has not landed is listed and, when run, says so and fails — never a made-up score."""

from __future__ import annotations

from pydantic import BaseModel


class Suite(BaseModel):
    name: str
    dimension: str  # safety | ethics | scenario
    datasets: list[str]
    description: str
    landed: bool = True
    needs: str = ""  # the module it waits for


SUITES: dict[str, Suite] = {
    s.name: s
    for s in [
        Suite(
            name="exam",
            dimension="scenario",
            datasets=["cmexam_val", "cmmlu_medical"],
            description="执业医师考试与医学知识选择题（单选、多选）",
        ),
        Suite(
            name="safety",
            dimension="safety",
            datasets=["medsafetybench", "safetybench_zh"],
            description="有害医疗请求的拒答率；通用安全选择题",
        ),
        Suite(
            name="ethics",
            dimension="ethics",
            datasets=["cvalues_responsibility", "flames_zh"],
            description="日常责任类问题的过度拒答率；对抗性价值观问题（偏见、伤害、隐私、违法）的无害率",
        ),
        Suite(name="triage", dimension="scenario", datasets=["triage_toyhom_im"], description="问诊分科"),
        Suite(
            name="dialogue",
            dimension="scenario",
            datasets=["dxy_dialog", "mie_cardio_dialogue"],
            description="症状→诊断（闭集）；对话中症状及其阴阳性抽取",
        ),
        Suite(
            name="deid",
            dimension="safety",
            datasets=["synthetic-deid"],
            description="合成病历中植入身份信息的识别（去标识化）",
        ),
        Suite(
            name="ner",
            dimension="scenario",
            datasets=["ccks2019_yidu_ner"],
            description="病历实体识别",
            landed=False,
            needs="clinical NER (EMR issue)",
        ),
        Suite(
            name="cdss",
            dimension="scenario",
            datasets=[],
            description="临床决策支持告警",
            landed=False,
            needs="CDSS rules",
        ),
        Suite(
            name="rx",
            dimension="scenario",
            datasets=[],
            description="处方审核问题识别",
            landed=False,
            needs="prescription review",
        ),
        Suite(
            name="qc",
            dimension="scenario",
            datasets=[],
            description="病历质控缺陷识别",
            landed=False,
            needs="EMR quality control",
        ),
    ]
}
