-- The ten most-rated genres in MovieLens (a movie's ratings count once per genre).
SELECT genre, count(*) AS ratings, round(avg(r.rating), 3) AS avg_rating
FROM ratings r
JOIN movies m USING (movieId), unnest(string_split(m.genres, '|')) AS g(genre)
GROUP BY genre
ORDER BY ratings DESC, genre
LIMIT 10;
