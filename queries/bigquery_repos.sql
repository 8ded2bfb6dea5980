-- The `repos` table on BigQuery, from what bigquery-public-data.github_repos has: stars from
-- sample_repos.watch_count (its watchers are GitHub's stargazers), the main language as the
-- one with the most bytes in `languages`, the license from `licenses`. Forks, fork flag,
-- commits, size and dates are not in the public dataset: NULL (a SEART export has them).
-- Not a document query: make a table of it (`CREATE OR REPLACE TABLE
-- `MY_PROJECT.MY_DATASET.repos` AS` followed by this file, in the console or `bq query
-- --use_legacy_sql=false`), then point the selection templates at it:
--   corpus extract --engine bigquery --query queries/github_polycoder.sql \
--     --repos-table MY_PROJECT.MY_DATASET.repos ...
SELECT
  r.repo_name AS repo_name,
  r.watch_count AS stars,
  CAST(NULL AS INT64) AS forks,
  CAST(NULL AS BOOL) AS is_fork,
  CAST(NULL AS INT64) AS commits,
  CAST(NULL AS INT64) AS size,
  (SELECT x.name FROM UNNEST(g.language) AS x ORDER BY x.bytes DESC, x.name LIMIT 1) AS language,
  l.license AS license,
  CAST(NULL AS TIMESTAMP) AS created_at,
  CAST(NULL AS TIMESTAMP) AS pushed_at
FROM `bigquery-public-data.github_repos.sample_repos` AS r
LEFT JOIN `bigquery-public-data.github_repos.languages` AS g ON g.repo_name = r.repo_name
LEFT JOIN `bigquery-public-data.github_repos.licenses` AS l ON l.repo_name = r.repo_name
