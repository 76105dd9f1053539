"""Item feature extraction (relational = RecBole's LightGCN on the train graph; more in later modules)."""
