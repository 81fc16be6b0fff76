"""The model's features by name, in the order of the feature matrix's columns, and what each means to a person.

The names are the matrix's column names for every consumer: the reasons in an
API answer, the prediction log, and the drift gate's monitored columns. Kept
apart from the transformer so that those consumers need no scikit-learn.
"""

from __future__ import annotations

FEATURE_NAMES: tuple[str, ...] = (
    "skill_coverage",
    "rare_skill_coverage",
    "related_skill_coverage",
    "n_required_skills",
    "n_freelancer_skills",
    "rate_budget_log_ratio",
    "over_budget",
    "under_budget",
    "log_implied_hourly_budget",
    "is_hourly",
    "duration",
    "years_experience",
    "experience_level",
    "missing_years",
    "excess_years",
    "timezone_overlap",
    "timezone_shortfall",
    "rating",
    "has_rating",
    "success_rate",
    "log_jobs_completed",
    "is_newcomer",
    "weekly_availability_hours",
    "text_similarity",
    "coverage_rank_in_job",
    "coverage_vs_job_best",
    "rate_gap_vs_job_median",
    "rating_vs_job_mean",
    "text_similarity_vs_job_mean",
    "n_applicants",
)

FEATURE_LABELS: dict[str, str] = {
    "skill_coverage": "share of the required skills listed",
    "rare_skill_coverage": "coverage of the rarer required skills",
    "related_skill_coverage": "missing skills in categories the freelancer works in",
    "n_required_skills": "number of required skills",
    "n_freelancer_skills": "number of skills listed",
    "rate_budget_log_ratio": "hourly rate against the budget",
    "over_budget": "rate above the budget",
    "under_budget": "rate below the budget",
    "log_implied_hourly_budget": "size of the budget",
    "is_hourly": "hourly rather than fixed budget",
    "duration": "length of the job",
    "years_experience": "years of experience",
    "experience_level": "experience level asked for",
    "missing_years": "experience short of the level asked for",
    "excess_years": "experience far above the level asked for",
    "timezone_overlap": "working hours shared with the client",
    "timezone_shortfall": "overlap short of what the client needs",
    "rating": "client rating",
    "has_rating": "has been rated",
    "success_rate": "job success rate",
    "log_jobs_completed": "jobs completed",
    "is_newcomer": "no completed jobs yet",
    "weekly_availability_hours": "weekly availability",
    "text_similarity": "profile text matches the job description",
    "coverage_rank_in_job": "skill coverage rank among the applicants",
    "coverage_vs_job_best": "skill coverage against the best applicant",
    "rate_gap_vs_job_median": "rate against the other applicants",
    "rating_vs_job_mean": "rating against the other applicants",
    "text_similarity_vs_job_mean": "text match against the other applicants",
    "n_applicants": "number of applicants",
}
