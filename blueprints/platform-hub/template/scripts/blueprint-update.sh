#!/usr/bin/env bash
# Move this repository to the newest version of its blueprint and propose it for review.
#
#   scripts/blueprint-update.sh github|gitlab
#
# The scheduled blueprint-update job runs this. It reads the blueprint, its source and the
# version in use from .copier-answers.yml, finds the source's newest release tag, runs
# `copier update` to it on the branch blueprint-update/<version>, and then:
#   - if Copier could not merge the blueprint's changes with local edits (conflicts), lists
#     the files in the job summary and fails: nothing is pushed, nothing is opened;
#   - otherwise commits, pushes the branch and opens a pull request (GitHub, with gh) or a
#     merge request (GitLab, with its API) holding the changelog of every release in between.
# Nothing to do when the version in use is the newest, or the branch was already pushed.
#
# Environment:
#   TRELLIS_BLUEPRINTS_TOKEN  reads a private blueprint repository over https (optional;
#                             default: GITHUB_TOKEN or CI_JOB_TOKEN, for a source on the same
#                             host only)
#   BLUEPRINT_UPDATE_TOKEN    pushes the branch and opens the request (GitHub: optional,
#                             default GITHUB_TOKEN; GitLab: required, a project access token
#                             with the api and write_repository scopes)
#   BASE_BRANCH               the branch the request targets (default: the checked-out one)
# Needs git, and python3 with Copier installed (it brings PyYAML and packaging); gh on
# GitHub, curl on GitLab.
set -euo pipefail

host=${1:-}
case "$host" in
  github | gitlab) ;;
  *)
    echo "usage: scripts/blueprint-update.sh github|gitlab" >&2
    exit 2
    ;;
esac

# A line for the log and, on GitHub, for the run's summary page.
summary() {
  printf '%s\n' "$*"
  if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
    printf '%s\n' "$*" >>"$GITHUB_STEP_SUMMARY"
  fi
}

# with_token TOKEN USER COMMAND...: run COMMAND (git, or Copier calling git) with a basic-auth
# header on its https requests. The header lives in the environment of that command only.
with_token() {
  local token=$1 user=$2 basic
  shift 2
  if [ -z "$token" ]; then
    "$@"
    return
  fi
  basic=$(printf '%s:%s' "$user" "$token" | base64 | tr -d '\n')
  GIT_CONFIG_COUNT=2 \
    GIT_CONFIG_KEY_0=http.extraHeader GIT_CONFIG_VALUE_0="" \
    GIT_CONFIG_KEY_1=http.extraHeader GIT_CONFIG_VALUE_1="Authorization: Basic $basic" \
    "$@"
}

# answer KEY: a value recorded in .copier-answers.yml.
answer() {
  python3 -c 'import sys, yaml
with open(".copier-answers.yml", encoding="utf-8") as answers:
    print((yaml.safe_load(answers) or {}).get(sys.argv[1]) or "")' "$1"
}

# newest_release: the newest PEP 440 final release among the tags on stdin.
newest_release() {
  python3 -c 'import sys
from packaging.version import InvalidVersion, Version
releases = []
for tag in sys.stdin.read().split():
    try:
        version = Version(tag)
    except InvalidVersion:
        continue
    if not version.is_prerelease:
        releases.append((version, tag))
print(max(releases)[1] if releases else "")'
}

# is_newer NEWEST CURRENT: whether NEWEST comes after CURRENT (or after the tag a
# `git describe` version such as 1.0.0-3-gabc123 counts from).
is_newer() {
  python3 -c 'import re, sys
from packaging.version import InvalidVersion, Version
newest, current = sys.argv[1], re.sub(r"-[0-9]+-g[0-9a-f]+$", "", sys.argv[2])
try:
    sys.exit(0 if Version(newest) > Version(current) else 1)
except InvalidVersion:
    sys.exit(0)' "$1" "$2"
}

# release_notes CHANGELOG CURRENT NEWEST BLUEPRINT: the request's description, with the
# changelog sections of the releases after CURRENT up to NEWEST, newest first.
release_notes() {
  # shellcheck disable=SC2016 # Python code: its backticks are Markdown, not command substitution
  python3 -c 'import re, sys
from pathlib import Path
from packaging.version import InvalidVersion, Version
path, current, newest, blueprint = sys.argv[1:5]
def version(text):
    try:
        return Version(text)
    except InvalidVersion:
        return None
low = version(re.sub(r"-[0-9]+-g[0-9a-f]+$", "", current))
high = version(newest)
text = Path(path).read_text(encoding="utf-8") if Path(path).is_file() else ""
sections, keep = [], False
for line in text.splitlines():
    if line.startswith("## "):
        match = re.match(r"##\s+\[?([^\]\s]+)\]?", line)
        found = version(match.group(1)) if match else None
        keep = found is not None and found <= high and (low is None or found > low)
        if keep:
            sections.append((found, ["### " + line[3:].strip()]))
    elif line.startswith("# "):
        keep = False
    elif keep:
        sections[-1][1].append(line)
print(f"Moves this repository from version `{current}` to `{newest}` of the `{blueprint}` "
      "blueprint with `copier update`, keeping the recorded answers.\n")
print("## What changes\n")
if not sections:
    print("The blueprint changelog has no notes for these versions.\n")
for _, lines in sorted(sections, key=lambda section: section[0], reverse=True):
    print("\n".join(lines).strip() + "\n")
print("Review the diff, do what the notes above ask by hand, then merge. "
      "Opened by `scripts/blueprint-update.sh`.")' "$@"
}

src=$(answer _src_path)
current=$(answer _commit)
blueprint=$(answer blueprint)
if [ -z "$src" ] || [ -z "$current" ] || [ -z "$blueprint" ]; then
  echo ".copier-answers.yml records no _src_path, _commit or blueprint" >&2
  exit 1
fi
case "$src" in
  -*)
    echo "_src_path $src is not a repository URL" >&2
    exit 1
    ;;
  gh:*) url="https://github.com/${src#gh:}" ;;
  gl:*) url="https://gitlab.com/${src#gl:}" ;;
  *) url=${src#git+} ;;
esac

# Tokens: the CI system's own token is only ever sent to its own host.
read_token=${TRELLIS_BLUEPRINTS_TOKEN:-}
if [ "$host" = github ]; then
  read_user=x-access-token
  if [ -z "$read_token" ] && [[ "$url" == "${GITHUB_SERVER_URL:-https://github.com}/"* ]]; then
    read_token=${GITHUB_TOKEN:-}
  fi
  write_token=${BLUEPRINT_UPDATE_TOKEN:-${GITHUB_TOKEN:-}}
  write_user=x-access-token
  export GIT_AUTHOR_NAME=${GIT_AUTHOR_NAME:-github-actions[bot]}
  export GIT_AUTHOR_EMAIL=${GIT_AUTHOR_EMAIL:-41898282+github-actions[bot]@users.noreply.github.com}
else
  read_user=oauth2
  if [ -z "$read_token" ] && [ -n "${CI_SERVER_URL:-}" ] && [[ "$url" == "$CI_SERVER_URL/"* ]]; then
    read_token=${CI_JOB_TOKEN:-}
    read_user=gitlab-ci-token
  fi
  write_token=${BLUEPRINT_UPDATE_TOKEN:-}
  write_user=oauth2
  if [ -z "$write_token" ]; then
    echo "BLUEPRINT_UPDATE_TOKEN is not set: add a project access token (role Developer," \
      "scopes api and write_repository) as a masked CI/CD variable" >&2
    exit 1
  fi
  export GIT_AUTHOR_NAME=${GIT_AUTHOR_NAME:-Blueprint update}
  export GIT_AUTHOR_EMAIL=${GIT_AUTHOR_EMAIL:-blueprint-update@noreply.${CI_SERVER_HOST:-gitlab.com}}
fi
export GIT_COMMITTER_NAME=${GIT_COMMITTER_NAME:-$GIT_AUTHOR_NAME}
export GIT_COMMITTER_EMAIL=${GIT_COMMITTER_EMAIL:-$GIT_AUTHOR_EMAIL}
case "$url" in
  https://*) ;;
  *) read_token="" ;; # a token never travels over plain http
esac

tags=$(with_token "$read_token" "$read_user" git ls-remote --tags --refs -- "$url" |
  sed 's#.*refs/tags/##')
newest=$(printf '%s\n' "$tags" | newest_release)
if [ -z "$newest" ]; then
  echo "$src has no release tags" >&2
  exit 1
fi
if ! is_newer "$newest" "$current"; then
  summary "✓ The $blueprint blueprint is up to date: $current (newest release: $newest)."
  exit 0
fi

base=${BASE_BRANCH:-$(git symbolic-ref --quiet --short HEAD || true)}
if [ -z "$base" ]; then
  echo "cannot tell which branch to update: set BASE_BRANCH" >&2
  exit 1
fi
branch="blueprint-update/$newest"
# Push where origin points, without credentials a CI system may have put in its URL.
push_url=$(git remote get-url origin | sed -E 's#://[^/@]+@#://#')
if with_token "$write_token" "$write_user" \
  git ls-remote --exit-code --heads -- "$push_url" "$branch" >/dev/null; then
  summary "✓ $branch is already pushed: the update to $newest waits for review."
  exit 0
fi

git switch --quiet --create "$branch"
with_token "$read_token" "$read_user" \
  copier update --defaults --vcs-ref "$newest" --conflict inline

# Copier exits normally on conflicts: unmerged files and its markers are the only sign.
conflicts=$({
  git diff --name-only --diff-filter=U
  git grep -l -I --untracked -E '^<<<<<<< before updating' || true
} | sort -u)
if [ -n "$conflicts" ]; then
  summary "### ✗ Updating the $blueprint blueprint from $current to $newest needs a person"
  summary ""
  summary "Copier could not merge the blueprint's changes with local edits in these files:"
  summary ""
  while IFS= read -r file; do
    summary "- \`$file\`"
  done <<<"$conflicts"
  summary ""
  summary "Nothing was pushed and no request was opened. Update locally with" \
    "\`trellis update --to $newest\` (or \`copier update --defaults --vcs-ref $newest\`)," \
    "resolve the marked lines, then \`git add\` the files, commit and push."
  exit 1
fi

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
with_token "$read_token" "$read_user" \
  git clone --quiet --depth 1 --branch "$newest" -- "$url" "$scratch/source" 2>/dev/null
release_notes "$scratch/source/blueprints/$blueprint/CHANGELOG.md" "$current" "$newest" \
  "$blueprint" >"$scratch/description.md"

title="Update the $blueprint blueprint to $newest"
git add --all
git commit --quiet --message "$title" \
  --message "From $current to $newest with copier update; the recorded answers are kept."
if ! with_token "$write_token" "$write_user" \
  git push --quiet "$push_url" "HEAD:refs/heads/$branch"; then
  summary "✗ Pushing $branch was refused. GITHUB_TOKEN cannot change files under" \
    ".github/workflows: store a token that may (contents, pull requests and workflows:" \
    "write) as the secret BLUEPRINT_UPDATE_TOKEN."
  exit 1
fi

if [ "$host" = github ]; then
  GH_TOKEN=${GH_TOKEN:-$write_token} gh pr create --base "$base" --head "$branch" \
    --title "$title" --body-file "$scratch/description.md"
else
  python3 -c 'import json, sys
branch, base, title, description = sys.argv[1:5]
with open(description, encoding="utf-8") as text:
    print(json.dumps({"source_branch": branch, "target_branch": base, "title": title,
                      "description": text.read(), "remove_source_branch": True}))' \
    "$branch" "$base" "$title" "$scratch/description.md" >"$scratch/request.json"
  # The token goes in a header file, never on a command line other processes can read.
  printf 'PRIVATE-TOKEN: %s\n' "$write_token" >"$scratch/headers"
  curl --fail-with-body --silent --show-error --request POST \
    --header @"$scratch/headers" --header "Content-Type: application/json" \
    --data @"$scratch/request.json" \
    "${CI_API_V4_URL:?}/projects/${CI_PROJECT_ID:?}/merge_requests"
  echo
fi
summary "✓ Proposed the $blueprint blueprint $newest (from $current) on $branch."
