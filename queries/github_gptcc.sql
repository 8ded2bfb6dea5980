-- GPT-Code-Clippy's repository selection (CodedotAl/gpt-code-clippy, "Data": repositories
-- from SEART GitHub Search with more than 10 stars, more than 2 commits and a license, forks
-- excluded; files under 70,708 bytes). Reads the `repos` table (`corpus github-tables --repos
-- SEART_EXPORT`; on BigQuery see docs/bigquery.md): a repository whose stars, commits, fork
-- flag or license are unknown is not selected. `license` is the licenses table's key where
-- it has the repository, else the export's; `language` comes from the extension (NULL for an
-- extension not mapped below).
-- BigQuery Standard SQL; `corpus extract` runs it on BigQuery or, transpiled, on DuckDB.
--
-- @param extensions ARRAY<STRING> = [".c", ".h", ".cs", ".cpp", ".cc", ".cxx", ".c++", ".hpp", ".hh", ".hxx", ".h++", ".go", ".java", ".js", ".lua", ".php", ".py", ".rb", ".rs", ".scala", ".sh", ".ts", ".jl", ".kt", ".swift"]  -- lowercase, with the dot
-- @param min_stars INT64 = 10         -- stars more than
-- @param min_commits INT64 = 2        -- commits more than
-- @param max_size INT64 = 70708       -- files smaller than, in bytes
WITH selected AS (
  SELECT r.repo_name, r.license
  FROM `bigquery-public-data.github_repos.repos` AS r
  WHERE r.stars > @min_stars AND r.commits > @min_commits AND r.license IS NOT NULL
    AND r.is_fork = FALSE
),
typed AS (
  SELECT
    f.id,
    f.repo_name,
    f.path,
    LOWER(REGEXP_EXTRACT(f.path, r'(\.[^./]+)$')) AS ext
  FROM `bigquery-public-data.github_repos.files` AS f
)
SELECT
  t.id AS id,
  t.repo_name AS repo_name,
  t.path AS path,
  c.copies AS copies,
  c.size AS size,
  c.content AS content,
  COALESCE(l.license, s.license) AS license,
  CASE t.ext
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
    WHEN '.lua' THEN 'Lua'
    WHEN '.sh' THEN 'Shell'
    WHEN '.jl' THEN 'Julia'
    WHEN '.kt' THEN 'Kotlin'
    WHEN '.swift' THEN 'Swift'
  END AS language
FROM typed AS t
JOIN selected AS s ON t.repo_name = s.repo_name
JOIN `bigquery-public-data.github_repos.contents` AS c ON t.id = c.id
LEFT JOIN `bigquery-public-data.github_repos.licenses` AS l ON t.repo_name = l.repo_name
WHERE
  NOT c.binary
  AND c.size < @max_size
  AND t.ext IN UNNEST(@extensions)
