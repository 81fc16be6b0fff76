"""The marketplace's vocabulary: skill categories, skills, regions, job attributes.

One shipped, license-clean taxonomy that the simulator draws from and the data
contract checks against. Each skill carries a *supply* weight (how common it is
among freelancers) and a *demand trend* (log-growth of its share of job posts
per year), so the simulated market moves the way the real one did: LLM work and
data annotation grow, legacy web stacks shrink.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Skill:
    slug: str
    name: str
    category: str
    supply: float  # relative share of freelancers who list it
    trend: float  # log-growth of demand per year


@dataclass(frozen=True)
class Category:
    slug: str
    title: str
    demand: float  # relative share of job posts at the start of the history
    trend: float  # log-growth of that share per year
    rate_premium: float  # log-multiplier on rates and budgets


@dataclass(frozen=True)
class Region:
    slug: str
    utc_offsets: tuple[float, ...]
    rate_offset: float  # log-multiplier on hourly rates (north_america = 0)
    freelancer_share: float
    client_share: float


CATEGORIES: tuple[Category, ...] = (
    Category("web_development", "Web Developer", 1.60, -0.15, 0.00),
    Category("mobile_development", "Mobile Developer", 0.90, -0.05, 0.05),
    Category("data_science", "Data Scientist", 0.90, 0.00, 0.15),
    Category("machine_learning", "Machine Learning Engineer", 0.80, 0.15, 0.30),
    Category("llm_apps", "LLM Application Engineer", 0.25, 1.10, 0.35),
    Category("data_engineering", "Data Engineer", 0.70, 0.10, 0.20),
    Category("mlops", "MLOps Engineer", 0.35, 0.45, 0.30),
    Category("data_annotation", "Data Annotation Specialist", 0.30, 0.70, -0.55),
    Category("cloud_devops", "Cloud and DevOps Engineer", 0.70, 0.05, 0.20),
    Category("design", "Designer", 0.90, -0.10, -0.10),
    Category("writing", "Writer", 0.90, -0.30, -0.35),
    Category("marketing", "Marketer", 0.70, -0.10, -0.20),
)

_SKILL_ROWS: dict[str, tuple[tuple[str, str, float, float], ...]] = {
    "web_development": (
        ("javascript", "JavaScript", 3.0, -0.05),
        ("typescript", "TypeScript", 2.0, 0.20),
        ("react", "React", 2.6, 0.05),
        ("vue", "Vue.js", 1.0, -0.05),
        ("angular", "Angular", 0.9, -0.25),
        ("nextjs", "Next.js", 1.0, 0.30),
        ("nodejs", "Node.js", 2.0, 0.00),
        ("php", "PHP", 1.6, -0.30),
        ("laravel", "Laravel", 0.8, -0.20),
        ("wordpress", "WordPress", 2.4, -0.35),
        ("django", "Django", 0.9, 0.00),
        ("html_css", "HTML and CSS", 3.2, -0.20),
        ("jquery", "jQuery", 1.2, -0.80),
        ("graphql", "GraphQL", 0.5, 0.10),
    ),
    "mobile_development": (
        ("swift", "Swift", 1.0, 0.00),
        ("kotlin", "Kotlin", 1.0, 0.05),
        ("flutter", "Flutter", 1.2, 0.20),
        ("react_native", "React Native", 1.1, 0.05),
        ("ios_development", "iOS Development", 1.1, 0.00),
        ("android_development", "Android Development", 1.3, -0.05),
        ("objective_c", "Objective-C", 0.3, -0.70),
        ("xamarin", "Xamarin", 0.2, -0.80),
        ("mobile_ui", "Mobile UI Implementation", 0.6, 0.00),
        ("app_store_optimization", "App Store Optimization", 0.3, 0.00),
    ),
    "data_science": (
        ("python", "Python", 3.5, 0.15),
        ("r_language", "R", 0.8, -0.30),
        ("sql", "SQL", 3.0, 0.00),
        ("pandas", "pandas", 1.8, 0.05),
        ("statistics", "Statistics", 1.2, 0.00),
        ("data_visualization", "Data Visualization", 1.4, 0.00),
        ("tableau", "Tableau", 0.8, -0.15),
        ("power_bi", "Power BI", 1.0, 0.05),
        ("excel_modeling", "Excel Modeling", 1.8, -0.20),
        ("ab_testing", "A/B Testing", 0.5, 0.05),
        ("time_series", "Time Series Forecasting", 0.5, 0.05),
        ("causal_inference", "Causal Inference", 0.2, 0.10),
        ("jupyter", "Jupyter", 1.2, 0.00),
    ),
    "machine_learning": (
        ("scikit_learn", "scikit-learn", 1.3, 0.00),
        ("pytorch", "PyTorch", 1.0, 0.25),
        ("tensorflow", "TensorFlow", 0.9, -0.30),
        ("xgboost", "XGBoost", 0.6, 0.00),
        ("lightgbm", "LightGBM", 0.3, 0.05),
        ("computer_vision", "Computer Vision", 0.7, 0.05),
        ("nlp", "Natural Language Processing", 0.8, 0.10),
        ("deep_learning", "Deep Learning", 1.0, 0.10),
        ("recommender_systems", "Recommender Systems", 0.3, 0.10),
        ("learning_to_rank", "Learning to Rank", 0.1, 0.15),
        ("reinforcement_learning", "Reinforcement Learning", 0.2, 0.05),
        ("opencv", "OpenCV", 0.6, -0.05),
        ("feature_engineering", "Feature Engineering", 0.6, 0.05),
        ("model_evaluation", "Model Evaluation", 0.4, 0.15),
    ),
    "llm_apps": (
        ("prompt_engineering", "Prompt Engineering", 0.9, 1.10),
        ("llm_app_development", "LLM App Development", 0.5, 1.30),
        ("rag_pipelines", "RAG Pipelines", 0.3, 1.40),
        ("llm_agents", "LLM Agents", 0.2, 1.60),
        ("llm_fine_tuning", "LLM Fine-Tuning", 0.2, 1.10),
        ("llm_evaluation", "LLM Evaluation", 0.1, 1.40),
        ("vector_databases", "Vector Databases", 0.2, 1.10),
        ("langchain", "LangChain", 0.4, 0.80),
        ("openai_api", "OpenAI API", 0.7, 0.90),
        ("embeddings", "Embeddings", 0.3, 1.00),
        ("chatbot_development", "Chatbot Development", 0.7, 0.60),
        ("guardrails", "LLM Guardrails", 0.1, 1.50),
        ("speech_to_text", "Speech to Text", 0.2, 0.70),
    ),
    "data_engineering": (
        ("spark", "Apache Spark", 0.8, 0.00),
        ("airflow", "Apache Airflow", 0.6, 0.05),
        ("dbt", "dbt", 0.5, 0.25),
        ("kafka", "Apache Kafka", 0.4, 0.05),
        ("snowflake", "Snowflake", 0.5, 0.15),
        ("bigquery", "BigQuery", 0.5, 0.10),
        ("etl_pipelines", "ETL Pipelines", 1.2, 0.05),
        ("postgresql", "PostgreSQL", 1.5, 0.05),
        ("mongodb", "MongoDB", 1.1, -0.10),
        ("data_warehousing", "Data Warehousing", 0.6, 0.00),
        ("web_scraping", "Web Scraping", 1.4, -0.05),
        ("databricks", "Databricks", 0.4, 0.25),
        ("data_modeling", "Data Modeling", 0.5, 0.05),
    ),
    "mlops": (
        ("mlflow", "MLflow", 0.3, 0.40),
        ("kubeflow", "Kubeflow", 0.1, 0.10),
        ("model_deployment", "Model Deployment", 0.4, 0.45),
        ("model_monitoring", "Model Monitoring", 0.2, 0.60),
        ("feature_stores", "Feature Stores", 0.1, 0.30),
        ("dvc", "DVC", 0.1, 0.30),
        ("prefect", "Prefect", 0.1, 0.40),
        ("sagemaker", "Amazon SageMaker", 0.3, 0.20),
        ("vertex_ai", "Vertex AI", 0.2, 0.35),
        ("ml_pipelines", "ML Pipelines", 0.3, 0.40),
        ("fastapi", "FastAPI", 0.6, 0.45),
        ("gpu_inference", "GPU Inference Optimization", 0.1, 0.90),
    ),
    "data_annotation": (
        ("image_annotation", "Image Annotation", 0.8, 0.40),
        ("text_annotation", "Text Annotation", 0.7, 0.70),
        ("audio_transcription", "Audio Transcription", 0.9, 0.10),
        ("rlhf_labeling", "RLHF Preference Labeling", 0.2, 1.50),
        ("data_labeling_qa", "Labeling Quality Assurance", 0.3, 0.60),
        ("bounding_boxes", "Bounding Box Annotation", 0.5, 0.20),
        ("semantic_segmentation", "Semantic Segmentation Labeling", 0.3, 0.30),
        ("content_moderation", "Content Moderation", 0.6, 0.30),
        ("label_studio", "Label Studio", 0.2, 0.50),
        ("data_entry", "Data Entry", 2.5, -0.40),
        ("red_teaming", "LLM Red Teaming", 0.1, 1.60),
    ),
    "cloud_devops": (
        ("aws", "AWS", 1.8, 0.05),
        ("gcp", "Google Cloud", 0.8, 0.10),
        ("azure", "Microsoft Azure", 0.9, 0.10),
        ("docker", "Docker", 1.6, 0.10),
        ("kubernetes", "Kubernetes", 0.9, 0.15),
        ("terraform", "Terraform", 0.7, 0.20),
        ("ci_cd", "CI/CD", 1.0, 0.10),
        ("linux_administration", "Linux Administration", 1.2, -0.10),
        ("github_actions", "GitHub Actions", 0.6, 0.25),
        ("ansible", "Ansible", 0.4, -0.10),
        ("serverless", "Serverless", 0.4, 0.05),
        ("prometheus_grafana", "Prometheus and Grafana", 0.4, 0.15),
        ("security_hardening", "Security Hardening", 0.3, 0.20),
    ),
    "design": (
        ("figma", "Figma", 1.6, 0.10),
        ("ui_design", "UI Design", 1.8, 0.00),
        ("ux_research", "UX Research", 0.7, 0.00),
        ("graphic_design", "Graphic Design", 2.5, -0.15),
        ("logo_design", "Logo Design", 1.8, -0.25),
        ("illustration", "Illustration", 1.2, -0.30),
        ("adobe_photoshop", "Adobe Photoshop", 2.2, -0.20),
        ("adobe_illustrator", "Adobe Illustrator", 1.6, -0.20),
        ("motion_graphics", "Motion Graphics", 0.6, 0.00),
        ("3d_modeling", "3D Modeling", 0.6, 0.00),
        ("video_editing", "Video Editing", 1.8, 0.05),
        ("presentation_design", "Presentation Design", 0.8, -0.10),
    ),
    "writing": (
        ("copywriting", "Copywriting", 2.0, -0.35),
        ("technical_writing", "Technical Writing", 0.9, 0.05),
        ("blog_writing", "Blog Writing", 2.0, -0.50),
        ("proofreading", "Proofreading", 1.5, -0.40),
        ("translation", "Translation", 1.6, -0.45),
        ("ghostwriting", "Ghostwriting", 0.8, -0.30),
        ("grant_writing", "Grant Writing", 0.3, 0.00),
        ("academic_writing", "Academic Writing", 0.8, -0.20),
        ("seo_writing", "SEO Writing", 1.2, -0.40),
        ("scriptwriting", "Scriptwriting", 0.5, 0.00),
        ("ai_content_editing", "AI Content Editing", 0.3, 1.00),
        ("documentation", "Software Documentation", 0.5, 0.10),
    ),
    "marketing": (
        ("seo", "SEO", 1.8, -0.10),
        ("social_media_marketing", "Social Media Marketing", 2.0, -0.05),
        ("google_ads", "Google Ads", 0.9, -0.05),
        ("facebook_ads", "Facebook Ads", 0.9, -0.10),
        ("email_marketing", "Email Marketing", 1.1, -0.10),
        ("content_strategy", "Content Strategy", 0.8, 0.00),
        ("marketing_analytics", "Marketing Analytics", 0.6, 0.10),
        ("lead_generation", "Lead Generation", 1.4, -0.10),
        ("crm_hubspot", "HubSpot CRM", 0.5, 0.05),
        ("shopify", "Shopify", 1.2, 0.00),
        ("growth_hacking", "Growth Hacking", 0.4, 0.00),
        ("ai_marketing_automation", "AI Marketing Automation", 0.2, 1.00),
    ),
}

SKILLS: tuple[Skill, ...] = tuple(
    Skill(slug, name, category, supply, trend)
    for category, rows in _SKILL_ROWS.items()
    for slug, name, supply, trend in rows
)

REGIONS: tuple[Region, ...] = (
    Region("north_america", (-8.0, -7.0, -6.0, -5.0), 0.00, 0.14, 0.42),
    Region("latin_america", (-6.0, -5.0, -4.0, -3.0), -0.55, 0.12, 0.05),
    Region("western_europe", (0.0, 1.0, 2.0), -0.08, 0.11, 0.24),
    Region("eastern_europe", (2.0, 3.0), -0.40, 0.13, 0.04),
    Region("middle_east", (3.0, 4.0), -0.45, 0.04, 0.05),
    Region("africa", (0.0, 1.0, 2.0, 3.0), -0.95, 0.09, 0.02),
    Region("south_asia", (5.0, 5.5, 6.0), -0.95, 0.22, 0.04),
    Region("southeast_asia", (7.0, 8.0), -0.85, 0.10, 0.03),
    Region("east_asia", (8.0, 9.0), -0.35, 0.03, 0.05),
    Region("oceania", (10.0, 12.0), -0.05, 0.02, 0.06),
)

EXPERIENCE_LEVELS: tuple[str, ...] = ("entry", "intermediate", "expert")
BUDGET_TYPES: tuple[str, ...] = ("hourly", "fixed")
DURATIONS: tuple[str, ...] = ("under_1_month", "1_to_3_months", "3_to_6_months", "over_6_months")

CATEGORY_SLUGS: tuple[str, ...] = tuple(c.slug for c in CATEGORIES)
SKILL_SLUGS: tuple[str, ...] = tuple(s.slug for s in SKILLS)
REGION_SLUGS: tuple[str, ...] = tuple(r.slug for r in REGIONS)
# Typical billable hours of a job by duration: turns a fixed budget into an
# implied hourly one, for the simulator's utility and for features alike.
TYPICAL_HOURS: dict[str, float] = {
    "under_1_month": 30.0,
    "1_to_3_months": 120.0,
    "3_to_6_months": 320.0,
    "over_6_months": 700.0,
}
