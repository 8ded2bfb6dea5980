-- PolyCoder's 12 languages (Xu et al. 2022, "A Systematic Evaluation of Large Language Models
-- of Code"), chosen by file extension; `language` is filled from the extension (Lua too, for
-- AlphaCode's languages: add ".lua" to the extensions).
-- An extension asked for that is not mapped below gets language NULL.
-- BigQuery Standard SQL; `corpus extract` runs it on BigQuery or, transpiled, on DuckDB.
--
-- @param extensions ARRAY<STRING> = [".c", ".h", ".cs", ".cpp", ".cc", ".cxx", ".c++", ".hpp", ".hh", ".hxx", ".h++", ".go", ".java", ".js", ".php", ".py", ".rb", ".rs", ".scala", ".ts"]  -- lowercase, with the dot
-- @param min_size INT64 = 0         -- smallest file kept, in bytes
-- @param max_size INT64 = 1048575   -- largest file kept, in bytes (PolyCoder: files over 1 MB dropped)
-- @param licensed BOOL = true        -- only repositories in `licenses` (false: all, license NULL where unknown; PolyCoder and AlphaCode had no license requirement)
WITH typed AS (
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
  l.license AS license,
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
  END AS language
FROM typed AS t
JOIN `bigquery-public-data.github_repos.contents` AS c ON t.id = c.id
LEFT JOIN `bigquery-public-data.github_repos.licenses` AS l ON t.repo_name = l.repo_name
WHERE
  NOT c.binary
  AND c.size BETWEEN @min_size AND @max_size
  AND t.ext IN UNNEST(@extensions)
  AND (l.license IS NOT NULL OR NOT @licensed)
