"""Annotation keys Trellis writes: existing plugins' keys where one reads them, else ours."""

__all__ = [
    "BLUEPRINT",
    "BLUEPRINT_VERSION",
    "CHAMPION_VERSION",
    "DATA_CLASSIFICATION",
    "GITHUB_PROJECT_SLUG",
    "LATEST_VERSION",
    "REGISTERED_MODEL",
    "SOURCE_LOCATION",
    "TECHDOCS_REF",
    "TRAINING_REGION",
]

PREFIX = "trellis.dev"
#: The model's name in MLflow, unchanged (entity names are normalised).
REGISTERED_MODEL = f"{PREFIX}/registered-model"
CHAMPION_VERSION = f"{PREFIX}/champion-version"
LATEST_VERSION = f"{PREFIX}/latest-version"
DATA_CLASSIFICATION = f"{PREFIX}/data-classification"
TRAINING_REGION = f"{PREFIX}/training-region"
BLUEPRINT = f"{PREFIX}/blueprint"
BLUEPRINT_VERSION = f"{PREFIX}/blueprint-version"

# Read by Backstage itself and by existing plugins.
SOURCE_LOCATION = "backstage.io/source-location"
TECHDOCS_REF = "backstage.io/techdocs-ref"
GITHUB_PROJECT_SLUG = "github.com/project-slug"
