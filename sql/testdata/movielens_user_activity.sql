-- The five most active users: ratings, mean rating, first and last day.
SELECT userId,
       count(*) AS ratings,
       round(avg(rating), 2) AS mean,
       min(make_timestamp(timestamp * 1000000))::DATE AS first_day,
       max(make_timestamp(timestamp * 1000000))::DATE AS last_day
FROM ratings
GROUP BY userId
ORDER BY ratings DESC, userId
LIMIT 5;
