lead_score >= 80 and lifecycle_stage = 'lead'
