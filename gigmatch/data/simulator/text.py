"""Template text for freelancer profiles and job descriptions.

The wording draws on the taxonomy's display names, so a text-similarity feature
between a job description and a profile carries real (but noisy) signal: both
name skills, and a profile also mentions a few skills it does not list.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gigmatch.data.taxonomy import CATEGORIES, SKILLS

_HEADLINES = (
    "{title} with {years} years of experience.",
    "Experienced {title} ({years} yrs) available for remote work.",
    "{title} | {years}+ years | fast, reliable delivery.",
    "Freelance {title} helping teams ship since {since}.",
)
_BODIES = (
    "I work mostly with {skills}.",
    "Core stack: {skills}.",
    "Skilled in {skills}, with clear communication and weekly updates.",
    "My toolbox includes {skills}; happy to take on long-term projects.",
)
_CLOSERS = (
    "Available about {hours} hours a week.",
    "Open to ongoing work, around {hours} hours per week.",
    "I reply within a day and can start this week.",
    "",
)
_JOB_OPENERS = (
    "We are looking for {a_level} {title} to {task}.",
    "Seeking {a_level} {title} who can {task}.",
    "Need a {title} ({level}) to {task}.",
    "Hiring {a_level} {title}: {task}.",
)
_LEVEL_PHRASES = {"entry": "an entry-level", "intermediate": "an intermediate", "expert": "an expert"}
_TASKS: dict[str, tuple[str, ...]] = {
    "web_development": ("build a customer portal", "fix bugs in our web app", "ship a new landing page"),
    "mobile_development": ("build a cross-platform app", "add payments to our app", "port our app to Android"),
    "data_science": ("analyse our sales data", "build a churn dashboard", "design an A/B test"),
    "machine_learning": ("train a demand forecasting model", "improve our recommender", "build an image classifier"),
    "llm_apps": ("build a RAG assistant over our docs", "design prompts for a support bot", "evaluate our LLM agent"),
    "data_engineering": ("build ETL pipelines", "migrate our warehouse", "set up a streaming pipeline"),
    "mlops": ("deploy our models to production", "set up model monitoring", "build a training pipeline"),
    "data_annotation": ("label a dataset of images", "rate LLM answers for preference data", "transcribe audio"),
    "cloud_devops": ("set up our Kubernetes cluster", "automate our CI/CD", "cut our cloud costs"),
    "design": ("redesign our app screens", "create a brand identity", "produce explainer videos"),
    "writing": ("write technical articles", "edit AI-generated drafts", "translate our product pages"),
    "marketing": ("run our paid ads", "grow our newsletter", "improve our SEO"),
}
_JOB_SKILLS = (
    "Must know {skills}.",
    "Required skills: {skills}.",
    "You should be comfortable with {skills}.",
)
_OVERLAP = {
    0: "Fully asynchronous, any timezone is fine.",
    2: "Some overlap with our working hours helps.",
    4: "Please overlap at least 4 hours with our team.",
    6: "Needs 6 hours of daily overlap for standups and pairing.",
    8: "Must work our full business hours.",
}

_SKILL_NAMES = np.array([s.name for s in SKILLS], dtype=object)
_TITLES = [c.title for c in CATEGORIES]


def _join(names: Sequence[str]) -> str:
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def profile_texts(
    rng: np.random.Generator,
    category_idx: np.ndarray,
    years: np.ndarray,
    signup_year: np.ndarray,
    hours: np.ndarray,
    skill_lists: Sequence[np.ndarray],
) -> list[str]:
    n = len(category_idx)
    head, body, close = (rng.integers(0, len(t), n) for t in (_HEADLINES, _BODIES, _CLOSERS))
    # Profiles mention a random subset of their skills plus one they do not list,
    # the way real profiles are incomplete and a little aspirational.
    extra = rng.integers(0, len(SKILLS), n)
    texts = []
    for i in range(n):
        skills = skill_lists[i]
        shown = [str(s) for s in _SKILL_NAMES[skills[: max(2, len(skills) // 2 + 1)]]]
        if len(shown) < 6:
            shown.append(str(_SKILL_NAMES[extra[i]]))
        parts = (
            _HEADLINES[head[i]].format(title=_TITLES[category_idx[i]], years=int(years[i]), since=int(signup_year[i])),
            _BODIES[body[i]].format(skills=_join(shown)),
            _CLOSERS[close[i]].format(hours=int(hours[i])),
        )
        texts.append(" ".join(p for p in parts if p))
    return texts


def job_descriptions(
    rng: np.random.Generator,
    category_idx: np.ndarray,
    level: Sequence[str],
    overlap_hours: np.ndarray,
    skill_lists: Sequence[np.ndarray],
) -> list[str]:
    n = len(category_idx)
    opener = rng.integers(0, len(_JOB_OPENERS), n)
    task = rng.integers(0, 3, n)
    skills_line = rng.integers(0, len(_JOB_SKILLS), n)
    texts = []
    for i in range(n):
        slug = CATEGORIES[category_idx[i]].slug
        names = [str(s) for s in _SKILL_NAMES[skill_lists[i]]]
        parts = (
            _JOB_OPENERS[opener[i]].format(
                level=level[i],
                a_level=_LEVEL_PHRASES[level[i]],
                title=_TITLES[category_idx[i]],
                task=_TASKS[slug][task[i]],
            ),
            _JOB_SKILLS[skills_line[i]].format(skills=_join(names)),
            _OVERLAP[int(overlap_hours[i])],
        )
        texts.append(" ".join(parts))
    return texts
