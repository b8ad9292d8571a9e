// What the web console needs beyond the API's queries.

// name: latest_positive_day
// params:
MATCH (x:Result)
USING INDEX x:Result(day)
WHERE x.day IS NOT NULL AND x.result = 'positive'
RETURN x.day AS day
ORDER BY x.day DESC
LIMIT 1
