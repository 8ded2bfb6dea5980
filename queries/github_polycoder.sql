-- PolyCoder's repository selection (Xu et al. 2022, "A Systematic Evaluation of Large Language
-- Models of Code"): per language, the most-starred repositories with at least 50
-- stars, at most 25,000 of them, and of each only the files in its majority language (the
-- repository's main language, GitHub's linguist name). PolyCoder had no license requirement:
-- `license` is the repository's where known, else NULL. Reads the `repos` table
-- (`corpus github-tables --repos EXPORT`; on BigQuery see docs/bigquery.md).
-- BigQuery Standard SQL; `corpus extract` runs it on BigQuery or, transpiled, on DuckDB.
--
-- @param languages ARRAY<STRING> = ["C", "C#", "C++", "Go", "Java", "JavaScript", "PHP", "Python", "Ruby", "Rust", "Scala", "TypeScript"]
-- @param min_stars INT64 = 50         -- stars at least
-- @param per_language INT64 = 25000   -- most-starred repositories kept per language
-- @param min_size INT64 = 0           -- smallest file kept, in bytes
-- @param max_size INT64 = 1048575     -- largest file kept, in bytes (files over 1 MB dropped)
WITH ranked AS (
  SELECT
    r.repo_name,
    r.language,
    ROW_NUMBER() OVER (PARTITION BY r.language ORDER BY r.stars DESC, r.repo_name) AS rank_in_language
  FROM `bigquery-public-data.github_repos.repos` AS r
  WHERE r.stars >= @min_stars AND r.language IN UNNEST(@languages)
),
selected AS (
  SELECT repo_name, language FROM ranked WHERE rank_in_language <= @per_language
),
typed AS (
  SELECT
    f.id,
    f.repo_name,
    f.path,
    CASE LOWER(REGEXP_EXTRACT(f.path, r'(\.[^./]+)$'))
    WHEN '.c' THEN 'C'
    WHEN '.h' THEN 'C'
    WHEN '.cs' THEN 'C#'
    WHEN '.cpp' THEN 'C++'
    WHEN '.cc' THEN 'C++'
    WHEN '.cxx' THEN 'C++'
    WHEN '.c++' THEN 'C++'
    WHEN '.hpp' THEN 'C++'
    WHEN '.hh' THEN 'C++'
    WHEN '.hxx' THEN 'C++'
    WHEN '.h++' THEN 'C++'
    WHEN '.go' THEN 'Go'
    WHEN '.java' THEN 'Java'
    WHEN '.js' THEN 'JavaScript'
    WHEN '.php' THEN 'PHP'
    WHEN '.py' THEN 'Python'
    WHEN '.rb' THEN 'Ruby'
    WHEN '.rs' THEN 'Rust'
    WHEN '.scala' THEN 'Scala'
    WHEN '.ts' THEN 'TypeScript'
    END AS language
  FROM `bigquery-public-data.github_repos.files` AS f
)
SELECT
  t.id AS id,
  t.repo_name AS repo_name,
  t.path AS path,
  c.copies AS copies,
  c.size AS size,
  c.content AS content,
  l.license AS license,
  t.language AS language
FROM typed AS t
JOIN selected AS s ON t.repo_name = s.repo_name AND t.language = s.language
JOIN `bigquery-public-data.github_repos.contents` AS c ON t.id = c.id
LEFT JOIN `bigquery-public-data.github_repos.licenses` AS l ON t.repo_name = l.repo_name
WHERE
  NOT c.binary
  AND c.size BETWEEN @min_size AND @max_size
