package pq

// Dimensions names the four PQ dimensions in pq_text order.
var Dimensions = [4]string{"overall", "technical", "rationality", "naturalness"}
