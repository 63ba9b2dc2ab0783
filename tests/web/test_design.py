"""The design system (issue 16): the CSS vocabulary every page uses exists, its colour pairs meet WCAG 2.1
contrast (4.5:1 for text), the chrome gives each role its navigation (with aria-current, a skip link, the
user, role and display zone), every form control has a label, and the SVG charts never crash on odd input."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import example, given
from hypothesis import strategies as st

from medfusion.apps.page_frame import app_links
from medfusion.record.models import Observation, PatientChart
from medfusion.store.access import ROLE_PERMISSIONS, Permission, Principal, Role
from medfusion.web.chart_axes import TimeScale, nice_ticks, time_ticks
from medfusion.web.lab_trends import lab_trends
from medfusion.web.vitals_chart import PANELS, vitals_svg
from tests.api.conftest import PASSWORD

CSS = (Path(__file__).parents[2] / "src/medfusion/web/static/web.css").read_text(encoding="utf-8")

VOCABULARY = [
    *(
        "page",
        "page-head",
        "grid-2",
        "grid-3",
        "stack",
        "card",
        "card-head",
        "card-body",
        "table-wrap",
        "data",
    ),
    *("form", "field", "hint", "actions", "btn", "btn-primary", "btn-danger", "btn-ghost"),
    *("alert", "alert-info", "alert-ok", "alert-warn", "alert-danger"),
    *("badge", "badge-info", "badge-ok", "badge-warn", "badge-danger", "badge-muted"),
    *(
        "empty",
        "muted",
        "mono",
        "progress",
        "doc",
        "evidence",
        "cite",
        "path-tag",
        "spinner",
        "skip-link",
        "sr-only",
    ),
]


def test_every_class_of_the_vocabulary_is_styled() -> None:
    missing = [name for name in VOCABULARY if not re.search(rf"\.{re.escape(name)}(?![\w-])", CSS)]
    assert missing == []


def test_the_font_stack_puts_cjk_fonts_first_and_draws_degree_celsius() -> None:
    stack = re.search(r"--font:\s*([^;]+);", CSS)
    assert stack is not None
    fonts = [f.strip().strip('"') for f in stack.group(1).split(",")]
    assert fonts.index("WenQuanYi Micro Hei") < fonts.index("sans-serif")
    assert fonts.index("Noto Sans CJK SC") < fonts.index("sans-serif")
    # WenQuanYi Micro Hei's ℃ is an empty glyph: the first face takes ℃ (only ℃/℉) from a font that draws it
    assert fonts[0] == "MF Signs"
    faces = re.findall(r"@font-face\s*\{([^}]*)\}", CSS)
    assert faces
    assert all('font-family: "MF Signs"' in f and "unicode-range: U+2103, U+2109;" in f for f in faces)


def test_navigation_collapses_below_720_px_and_focus_stays_visible() -> None:
    narrow = CSS[CSS.index("@media (max-width: 719.98px)") :]
    assert ".nav-toggle:checked ~ .site-nav" in narrow and ".site-nav { display: none" in narrow
    assert re.search(r":focus-visible\s*\{\s*outline:\s*3px solid", CSS)
    wrap = re.search(r"\.table-wrap \{([^}]*)\}", CSS)
    assert wrap and all(
        rule in wrap.group(1)
        # relative: a visually hidden span inside a wrapped table must not widen the page
        for rule in ("position: relative", "max-width: 100%", "overflow-x: auto")
    )


def _colours() -> dict[str, str]:
    root = CSS[CSS.index(":root") : CSS.index("}", CSS.index(":root"))]
    return dict(re.findall(r"--([\w-]+):\s*(#[0-9a-fA-F]{6})", root))


def _luminance(colour: str) -> float:
    def channel(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.04045 else ((s + 0.055) / 1.055) ** 2.4

    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(a: str, b: str) -> float:
    """WCAG 2.1 contrast ratio (§1.4.3, relative luminance definition)."""
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def test_contrast_is_what_wcag_says_for_black_on_white() -> None:
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)  # the classic just-fails grey


# every text colour on the background it is used on in web.css
TEXT_PAIRS = [
    ("ink", "surface"),
    ("ink", "bg"),
    ("ink", "surface-alt"),
    ("muted", "surface"),
    ("muted", "bg"),
    ("muted", "surface-alt"),
    ("brand-dark", "surface"),
    ("brand-dark", "brand-soft"),
    ("brand-ink", "brand"),
    ("brand-ink", "brand-dark"),
    ("bad", "surface"),
    ("bad-ink", "bad-bg"),
    ("ok", "ok-bg"),
    ("warn", "warn-bg"),
    ("info", "info-bg"),
    ("badge-muted", "badge-muted-bg"),
    ("focus", "surface"),  # focus ring against the page (3:1 is enough for it; it has 4.5)
]


@pytest.mark.parametrize(("fg", "bg"), TEXT_PAIRS)
def test_text_colours_meet_wcag_aa(fg: str, bg: str) -> None:
    colours = _colours()
    assert contrast(colours[fg], colours[bg]) >= 4.5, (fg, bg, round(contrast(colours[fg], colours[bg]), 2))


def test_chart_series_colours_are_visible_on_white() -> None:
    """Lines and points are graphics: WCAG 1.4.11 asks 3:1 against the background."""
    for panel in PANELS:
        for series in panel.series:
            assert contrast(series.colour, "#ffffff") >= 3.0, series


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.controls: list[dict[str, str | None]] = []
        self.labels: set[str] = set()
        self.current: list[str] = []
        self.nav: list[str] = []
        self.ids: list[str] = []
        self._in_nav = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.append(a["id"] or "")
        if tag in {"input", "select", "textarea"} and a.get("type") not in {"hidden", "submit"}:
            self.controls.append(a)
        if tag == "label" and a.get("for"):
            self.labels.add(a["for"] or "")
        if tag == "ul" and "nav-links" in (a.get("class") or ""):
            self._in_nav = True
        if self._in_nav and tag == "a":
            self.nav.append(a.get("href") or "")
            if a.get("aria-current") == "page":
                self.current.append(a.get("href") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "ul":
            self._in_nav = False


def _parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


def _login(client: TestClient, username: str) -> None:
    client.post("/login", data={"username": username, "password": PASSWORD, "next": "/"})


def _expected_links(role: Role) -> list[str]:
    principal = Principal(role.value, role.value, "P0000001" if role is Role.patient else None)
    may = ROLE_PERMISSIONS[role]
    links = ["/patients/P0000001"] if principal.confined() else []
    if not principal.confined() and Permission.patient_search in may:
        links.append("/patients")
    links += [link.path for link in app_links(principal)]
    if not principal.confined() and {Permission.knowledge_manage, Permission.patient_read} & may:
        links.append("/knowledge")
    for permission, path in (
        (Permission.prescription_review, "/pharmacy"),
        (Permission.draft_review, "/drafts"),
        (Permission.evaluation_run, "/evaluations"),
        (Permission.audit_read, "/audit"),
        (Permission.user_manage, "/admin"),
    ):
        if permission in may:
            links.append(path)
    return links


def test_each_role_gets_its_navigation_with_the_user_role_and_zone(
    client: TestClient, seeded: list[PatientChart]
) -> None:
    for role in Role:
        _login(client, role.value)
        html = client.get("/patients").text  # the page, or the typed error inside the same chrome
        page = _parse(html)
        assert page.nav == _expected_links(role), role
        assert f'<span class="who-user">{role.value}</span>' in html
        assert "时区 CST Asia/Shanghai" in html
        client.post("/logout")
    _login(client, "doctor")
    nav = _parse(client.get("/patients").text).nav
    assert nav[0] == "/patients" and nav.index("/knowledge") < nav.index("/drafts")


def test_the_active_link_is_marked_and_the_skip_link_leads_to_main(
    client: TestClient, seeded: list[PatientChart]
) -> None:
    _login(client, "doctor")
    for path, current in (
        ("/patients", "/patients"),
        (f"/patients/{seeded[0].patient.id}", "/patients"),
        ("/drafts", "/drafts"),
    ):
        html = client.get(path).text
        page = _parse(html)
        assert page.current == [current], path
        assert '<a class="skip-link" href="#main">' in html and "main" in page.ids
        assert 'id="nav-toggle"' in html and 'aria-label="导航菜单 menu"' in html


def test_every_form_control_has_a_label(client: TestClient, seeded: list[PatientChart]) -> None:
    from tests.web.test_pages import _stored_draft

    _stored_draft("ask", None)
    pages = [client.get("/login").text]
    _login(client, "doctor")
    pages += [client.get(p).text for p in ("/patients", f"/patients/{seeded[0].patient.id}", "/drafts")]
    for html in pages:
        page = _parse(html)
        unlabelled = [
            c
            for c in page.controls
            if not (c.get("aria-label") or c.get("aria-labelledby") or c.get("id") in page.labels)
        ]
        assert unlabelled == []
        assert len(page.ids) == len(set(page.ids)), "ids are unique on a page"


# ---- charts never crash on odd input (empty, one point, equal times, missing values, extremes) ----

_VITAL_NAMES = [s.name for p in PANELS for s in p.series] + ["身高", "未知项"]
_UNITS = ["mmHg", "次/分", "℃", "°C", "%", "/min", "kg", None]
_times = st.one_of(
    st.none(),
    st.datetimes(min_value=datetime(1881, 1, 1), max_value=datetime(2199, 12, 31), timezones=st.just(UTC)),
    st.sampled_from([datetime(2024, 3, 1, 8, tzinfo=UTC)]),  # many at the same instant
)
_values = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-1e6, max_value=1e6),
    st.sampled_from([0.0, 37.3, 120.0]),
)


@st.composite
def _observations(draw: st.DrawFn, category: str) -> list[Observation]:
    count = draw(st.integers(min_value=0, max_value=12))
    found = []
    for i in range(count):
        value = draw(_values)
        unit = draw(st.sampled_from(_UNITS if category == "vital-signs" else ["mmol/L", "g/L", "%"]))
        low = draw(st.one_of(st.none(), st.floats(min_value=-100, max_value=100)))
        high = draw(st.one_of(st.none(), st.floats(min_value=-100, max_value=300)))
        if low is not None and high is not None and low > high:
            low, high = high, low
        found.append(
            Observation(
                id=f"o{i}",
                category=category,
                name=draw(
                    st.sampled_from(_VITAL_NAMES if category == "vital-signs" else ["血钾", "血红蛋白"])
                ),
                loinc_code=draw(st.sampled_from([None, "8480-6", "8867-4", "2823-3"])),
                value=value,
                unit=unit,
                reference_low=low,
                reference_high=high,
                effective_at=draw(_times),
            )
        )
    return found


def _svgs(html: str) -> list[ET.Element]:
    return [ET.fromstring(chunk) for chunk in re.findall(r"<svg.*?</svg>", html, flags=re.S)]


def _finite_coordinates(svg: ET.Element) -> None:
    for element in svg.iter():
        for key in ("cx", "cy", "x", "y", "x1", "x2", "y1", "y2", "width", "height"):
            if key in element.attrib:
                assert math.isfinite(float(element.attrib[key])), (key, element.attrib[key])
        for pair in element.attrib.get("points", "").split():
            assert all(math.isfinite(float(v)) for v in pair.split(","))


@given(_observations("vital-signs"))
def test_vitals_svg_never_crashes_and_draws_well_formed_svg(observations: list[Observation]) -> None:
    html = vitals_svg(observations)
    drawable = [
        o
        for o in observations
        if o.value is not None and math.isfinite(o.value) and o.effective_at is not None
    ]
    if html is None:
        return
    assert drawable, "a chart only when something can be drawn"
    svgs = _svgs(html)
    assert svgs
    for svg in svgs:
        _finite_coordinates(svg)
        assert svg.find("{http://www.w3.org/2000/svg}title") is not None
        assert svg.find("{http://www.w3.org/2000/svg}desc") is not None


@given(_observations("laboratory"))
def test_lab_sparklines_never_crash(observations: list[Observation]) -> None:
    for trend in lab_trends(observations):
        assert trend.results >= 1 and trend.drawn <= trend.results
        if trend.svg is not None:
            assert trend.drawn >= 2
            for svg in _svgs(trend.svg):
                _finite_coordinates(svg)


@given(
    st.datetimes(min_value=datetime(1881, 1, 1), max_value=datetime(2199, 1, 1), timezones=st.just(UTC)),
    st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=365 * 150)),
)
def test_time_ticks_fall_inside_the_axis_in_order(start: datetime, span: timedelta) -> None:
    scale = TimeScale.covering([start, start + span], 0, 400)
    ticks = time_ticks(scale, max_ticks=4)
    assert 1 <= len(ticks) <= 5
    instants = [t for t, _ in ticks]
    assert instants == sorted(instants)
    assert all(scale.start <= t <= scale.end for t in instants)
    assert all(0 <= scale(t) <= 400 for t in instants)


@given(st.floats(min_value=-1e9, max_value=1e9), st.floats(min_value=-1e9, max_value=1e9))
@example(0.0, 5e-324)  # a span of one subnormal: the step underflowed to 0 (found by this test)
@example(1e-300, 3e-300)
@example(5.0, -5e-324)  # low / step underflowed to -0.0, above low
def test_nice_ticks_cover_the_range(a: float, b: float) -> None:
    ticks = nice_ticks(a, b)
    assert ticks[0] <= min(a, b) and ticks[-1] >= max(a, b) and len(ticks) <= 50


def test_citation_links_are_made_in_the_drafts_text_never_inside_an_attribute() -> None:
    """A draft (model output or a clinician's edit) may put ``[K1]`` in a link title or an image's alt
    text; linking it there would write markup into the attribute and break the element open."""
    from medfusion.apps.page_frame import render_markdown
    from medfusion.web.draft_review import cite_links

    source = '阿托伐他汀睡前口服 [K1]。见[指南](https://example.org/g "[K1]")与![[K1]](/static/x.png)。`[K1]`'
    html = str(cite_links(render_markdown(source), "abcd1234", {"K1"}))

    class Collect(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.attrs: dict[str, list[str | None]] = {}
            self.cites = 0

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            for name, value in attrs:
                self.attrs.setdefault(f"{tag}.{name}", []).append(value)
            self.cites += tag == "a" and ("class", "cite") in attrs

    parsed = Collect()
    parsed.feed(html)
    assert parsed.attrs["a.title"] == ["[K1]"] and parsed.attrs["img.alt"] == ["[K1]"]
    assert parsed.cites == 2  # the sentence's marker, and the one in the code span's text
    assert 'href="#ev-abcd1234-K1"' in html and "cite" not in str(parsed.attrs["a.title"])
