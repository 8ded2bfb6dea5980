-- CodeParrot's extraction query (codeparrot/codeparrot-clean, "How to build the dataset"):
-- every Python file of a licensed repository, text only, between 1 KiB and 1 MiB.
-- BigQuery Standard SQL; `corpus extract` runs it on BigQuery or, transpiled, on DuckDB.
--
-- @param min_size INT64 = 1024      -- smallest file kept, in bytes
-- @param max_size INT64 = 1048575   -- largest file kept, in bytes (BigQuery stores content below 1 MiB)
SELECT
  f.id AS id,
  f.repo_name AS repo_name,
  f.path AS path,
  c.copies AS copies,
  c.size AS size,
  c.content AS content,
  l.license AS license,
  'Python' AS language
FROM `bigquery-public-data.github_repos.files` AS f
JOIN `bigquery-public-data.github_repos.contents` AS c ON f.id = c.id
JOIN `bigquery-public-data.github_repos.licenses` AS l ON f.repo_name = l.repo_name
WHERE
  NOT c.binary
  AND f.path LIKE '%.py'
  AND c.size BETWEEN @min_size AND @max_size
