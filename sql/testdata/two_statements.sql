/* A script with two statements; both results are printed in order. */
SELECT count(*) AS movies FROM movies;
-- a semicolon inside a string does not end a statement
SELECT 'a;b' AS s, title FROM movies WHERE movieId = 1;
