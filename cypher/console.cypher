// What the web console needs beyond the API's queries.

// name: latest_positive_day -> value?
// params:
MATCH (x:Result)
USING INDEX x:Result(day)
WHERE x.day IS NOT NULL AND x.result = 'positive'
RETURN x.day AS day
ORDER BY x.day DESC
LIMIT 1

// name: task_status_counts -> rows
// params: day, district_code
MATCH (k:Task {result_day: $day})
USING INDEX SEEK k:Task(result_day)
WHERE $district_code IS NULL OR k.district_code = $district_code
RETURN k.district_code AS district_code, k.status AS status, count(*) AS n
